#!/bin/sh
exec sh "$(dirname "$0")/golden.sh" "$1" "$2/golden/wrn_tiny"
