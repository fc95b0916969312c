#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (the S3 server the storage tests run against)
# from its Go module, once, into a cache folder, and prints the binary's path.
# `go install module@version` refuses this module (its go.mod has replace
# directives), so the module is downloaded and built in a writable copy.
# About 4 minutes on two cores, a ~230 MB binary; reused when present.
# internal/weed finds the binary at the same path (keep them in step).
set -euo pipefail

VERSION=v0.0.0-20261109003541-7506e5f91cd6
GO=${GO:-go}
cache=${FERRY_WEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/weed-$VERSION}
bin=$cache/weed

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
dir=$("$GO" mod download -json "github.com/seaweedfs/seaweedfs@$VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
	echo "weed: go mod download gave no module folder" >&2
	exit 1
fi

src=$(mktemp -d "$cache/src.XXXXXX")
trap 'chmod -R u+w "$src" 2>/dev/null; rm -rf "$src"' EXIT
cp -R "$dir/." "$src/"
chmod -R u+w "$src"
echo "weed: building SeaweedFS $VERSION (a few minutes)" >&2
# Niced, and one package at a time on a developer's machine, which is shared
# with other builds and tests; CI has the machine to itself.
par=1
if [ "${CI:-}" = true ]; then par=2; fi
(cd "$src" && GOFLAGS=-mod=mod nice -n 10 "$GO" build -p "$par" -trimpath -o "$cache/weed.tmp" ./weed)
mv "$cache/weed.tmp" "$bin"
echo "$bin"
