# Run by scripts/test-third-party.sh inside a copy of upstream pion/sctp
# with our sources over it; fixes upstream tests that the patches need.
set -euo pipefail
# dumbConn2 keeps the slice passed to Write instead of copying it, which
# io.Writer forbids. The patched association reuses a packet's buffer once
# Write returns (ferry_pool.go), so the test conn must copy, as every real
# one (DTLS, UDP) does.
grep -q 'c.packets = append(c.packets, packet)' association_test.go
sed -i 's/c.packets = append(c.packets, packet)/c.packets = append(c.packets, append([]byte(nil), packet...))/' association_test.go
