exec sh "$(dirname "$0")/golden.sh" "$1" "$2/golden/saa_e2e"
