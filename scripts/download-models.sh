#!/usr/bin/env bash
# Downloads the official model files into ./models (or $SAA_MODELS). Not implemented yet.
echo "download-models: not implemented yet; place the official checkpoints in ./models" >&2
exit 1
