#!/usr/bin/env bash
# Checks that third_party/ holds upstream's code and only the patches its
# FERRY.md files own up to (part of `make vet`):
#   - every file of a copy is byte-identical to the same file of the upstream
#     release that go.mod pins (from the Go module cache), unless the copy's
#     FERRY.md names it (as `path` in its "Files" list);
#   - every file FERRY.md names really differs from upstream or is ours;
#   - every changed hunk of an upstream file carries a "ferry patch" marker on
#     one line, so `grep -rn "ferry patch" third_party` finds every patch.
#
#   scripts/check-third-party.sh [module-dir...]   (default: all of third_party/*/)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(third_party/*/)

modpath() { awk '$1 == "module" { print $2; exit }' "$1/go.mod"; }
modversion() { $GO list -m -f '{{if .Replace}}{{.Version}}{{end}}' "$1"; }
# The paths FERRY.md lists under "## Files", one `path` per bullet.
listed() { awk '/^## /{f = ($0 == "## Files")} f && /^- `/' "$1/FERRY.md" | sed -E 's/^- `([^`]+)`.*/\1/'; }

status=0
fail() { echo "third-party: $*" >&2; status=1; }

for d in "${dirs[@]}"; do
	d=${d%/}
	mod=$(modpath "$d")
	ver=$(modversion "$mod")
	[ -n "$ver" ] || { fail "$mod is not replaced in go.mod"; continue; }
	src=$($GO mod download -json "$mod@$ver" | awk -F'"' '$2 == "Dir" { print $4 }')
	[ -d "$src" ] || { fail "$mod@$ver is not in the module cache"; continue; }
	[ -f "$d/FERRY.md" ] || { fail "$d has no FERRY.md"; continue; }
	mapfile -t names < <(listed "$d")
	declare -A named=()
	for n in "${names[@]}"; do named[$n]=1; done

	while IFS= read -r -d '' f; do
		f=${f#./}
		[ "$f" = FERRY.md ] && continue
		if [ -f "$src/$f" ] && cmp -s "$d/$f" "$src/$f"; then
			[ -z "${named[$f]:-}" ] || fail "$d/FERRY.md lists $f, which is upstream's unchanged"
			continue
		fi
		[ -n "${named[$f]:-}" ] || fail "$d/$f differs from $mod@$ver (or is not upstream's) but $d/FERRY.md does not list it under ## Files"
		[ -f "$src/$f" ] || continue
		# Every hunk of a patched upstream file names itself.
		{ diff -U2 "$src/$f" "$d/$f" || true; } | awk -v f="$d/$f" '
			/^@@/ { if (h && !m) { print f ": hunk " h " has no \"ferry patch\" marker"; bad = 1 } h = $0; m = 0; next }
			/ferry patch/ { m = 1 }
			END { if (h && !m) { print f ": hunk " h " has no \"ferry patch\" marker"; bad = 1 } exit bad }
		' >&2 || status=1
	done < <(cd "$d" && find . -type f -print0)
	for n in "${names[@]}"; do
		[ -e "$d/$n" ] || fail "$d/FERRY.md lists $n, which does not exist"
	done
	unset named
done
[ $status -eq 0 ] && echo "third-party: every copy is upstream's plus the patches its FERRY.md lists"
exit $status
