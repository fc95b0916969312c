#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine when run as root;
# otherwise lists exactly what is missing and how to install it.
set -euo pipefail

# SeaweedFS, the S3 server of the storage tests: built from its Go module
# once into a cache folder (a few minutes the first time), no root needed.
"$(dirname "$0")/weed.sh" >/dev/null

pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || pkgs+=("$2"); }
need chromium chromium
need redis-server redis-server
need turnserver coturn
need turnutils_uclient coturn
need iptables iptables
need ip iproute2
need node nodejs
need npm npm
need zbarimg zbar-tools
# The path lab checks its emulator with ping; the path bench's TCP ceiling is iperf3.
need ping iputils-ping
need iperf3 iperf3

if [ ${#pkgs[@]} -eq 0 ]; then
	exit 0
fi
# De-duplicate (coturn is listed twice).
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "deps: installing ${pkgs[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
	# The coturn package starts a system TURN server on 3478; tests run their own.
	if command -v systemctl >/dev/null 2>&1; then systemctl disable --now coturn >/dev/null 2>&1 || true; fi
	exit 0
fi

echo "deps: missing ${pkgs[*]}" >&2
echo "deps: install them with: sudo apt-get install ${pkgs[*]}" >&2
exit 1
