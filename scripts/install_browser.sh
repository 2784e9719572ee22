#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for MiniWoB++ when either is missing. Idempotent.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
echo "Installing Debian chromium + chromium-driver (needed for MiniWoB++)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
