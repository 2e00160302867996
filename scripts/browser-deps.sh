#!/usr/bin/env bash
# Installs headless Chromium for the dashboard's browser tests on a Debian
# machine. Idempotent. Exits non-zero, saying why, when it cannot install.
set -euo pipefail
for b in chromium chromium-browser; do
	if command -v "$b" >/dev/null; then
		exit 0
	fi
done
if [ "$(id -u)" != 0 ]; then
	echo "browser-deps: chromium is not installed and this is not root: run 'apt-get install -y chromium' as root" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null; then
	echo "browser-deps: chromium is not installed and there is no apt-get to install it" >&2
	exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
