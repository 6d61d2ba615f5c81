#!/usr/bin/env bash
# Installs every build and test dependency of saa from Debian 12 packages. Idempotent; run as root
# (or with sudo available). Used by CI (.ci/run) and by the README's set-up commands.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-dev libpng-dev libjpeg62-turbo-dev
      libcjson-dev libutf8proc-dev zlib1g-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
