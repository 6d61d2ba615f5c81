# tests/data/sam_variant: a small SAM golden of other sizes (see its README.md)
exec sh "$(dirname "$0")/golden.sh" "$1" "$3/sam_variant"
