#!/bin/sh
# Install the Debian 12 packages workbot needs, skipping those already there.
#   packaging/install-deps.sh          build and run
#   packaging/install-deps.sh --test   also what the test suite needs
set -eu

pkgs="gcc libc6-dev pkg-config meson ninja-build
libwebsockets-dev libcjson-dev libcurl4-openssl-dev liblmdb-dev libsodium-dev"
if [ "${1:-}" = "--test" ]; then
	pkgs="$pkgs libcmocka-dev curl python3 openssl"
fi

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing:$missing (run as root, or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
