#!/usr/bin/env bash
# Tests the pion modules that third_party/ holds patched copies of: for
# each, the upstream release's own test suite plus our tests of the patches
# (ferry_*_test.go) run against our sources. The upstream tests come from
# the Go module cache (go mod download), so the repository keeps only what
# the build needs. Modules vendored here replace each other, so pion/webrtc's
# tests exercise our ice, dtls and sctp.
#
#   scripts/test-third-party.sh [module-dir...]   (default: all of third_party/*/)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
GO=${GO:-go}

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(third_party/*/)

# module path of a vendored copy, and the version the main go.mod pins
modpath() { awk '$1 == "module" { print $2; exit }' "$1/go.mod"; }
modversion() { $GO list -m -f '{{if .Replace}}{{.Version}}{{end}}' "$1"; }

replaces=()
for d in third_party/pion-*; do
	replaces+=("-replace=$(modpath "$d")=$root/$d")
done

# test_module DIR: one module's suite in its own copy; output to $work/DIR.log.
test_module() {
	local d=${1%/}
	local mod ver src dst
	mod=$(modpath "$d")
	ver=$(modversion "$mod")
	if [ -z "$ver" ]; then
		echo "third-party: $mod is not replaced in go.mod" >&2
		return 1
	fi
	src=$($GO mod download -json "$mod@$ver" | awk -F'"' '$2 == "Dir" { print $4 }')
	dst="$work/$(basename "$d")"
	cp -r "$src" "$dst"
	chmod -R u+w "$dst"
	# Our sources (patched files, ferry_*.go and ferry_*_test.go) over upstream's.
	(cd "$d" && find . -name '*.go' -print0) | while IFS= read -r -d '' f; do
		mkdir -p "$dst/$(dirname "$f")"
		cp "$d/$f" "$dst/$f"
	done
	# Upstream test fixes that the patches need, each with its reason.
	if [ -f "$d/ferry_test_fixes.sh" ]; then
		(cd "$dst" && bash "$root/$d/ferry_test_fixes.sh")
	fi
	local others=()
	for r in "${replaces[@]}"; do
		case "$r" in "-replace=$mod="*) ;; *) others+=("$r") ;; esac
	done
	(cd "$dst" && $GO mod edit "${others[@]}")
	# Upstream tests that fail now and then on unpatched upstream too: one
	# go test -skip pattern, with the evidence, in ferry_test_skip.txt.
	local skip=() pat note=""
	if [ -f "$d/ferry_test_skip.txt" ]; then
		pat=$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$d/ferry_test_skip.txt" | grep -v '^$' | head -1)
		[ -z "$pat" ] || skip=(-skip "$pat")
	fi
	[ ${#skip[@]} -eq 0 ] || note=", skipping ${skip[1]} (see its ferry_test_skip.txt)"
	# The packages to test, if not all: ferry_test_pkgs.txt (quic-go's whole
	# suite, integration tests included, is long; only what the patches touch).
	local pkgs=(./...)
	if [ -f "$d/ferry_test_pkgs.txt" ]; then
		mapfile -t pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$d/ferry_test_pkgs.txt" | grep -v '^$')
	fi
	echo "== $mod $ver (patched)$note"
	(cd "$dst" && GOFLAGS=-mod=mod $GO test -count=1 -timeout 15m "${skip[@]}" "${pkgs[@]}")
}

# One suite at a time: several of upstream's tests assert wall-clock timing
# (retransmission timers within a few milliseconds, packet counts that an
# extra timer-driven retransmission changes), and four suites side by side
# on two cores made them fail now and then.
status=0
for d in "${dirs[@]}"; do
	log="$work/$(basename "$d").log"
	if ! test_module "$d" >"$log" 2>&1; then
		status=1
	fi
	grep -v 'no test files' "$log" || true
done
[ $status -eq 0 ] || echo "third-party: some suites failed (above)" >&2
exit $status
