#!/bin/sh
# Runs `saa check-golden FOLDER`; exit 77 (ctest: skipped) with a message when the folder is absent.
saa="$1"; folder="$2"
if [ ! -f "$folder/config.json" ]; then
  echo "SKIPPED: golden folder $folder not found (../shared absent)"
  exit 77
fi
exec "$saa" check-golden "$folder"
