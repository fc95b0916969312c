# Run by scripts/test-third-party.sh inside a copy of upstream pion/ice
# with our sources over it; fixes races in upstream tests.
set -euo pipefail
# TestGatherRelayWithVNet: the agent reports the relay candidate and then
# the end of gathering (nil) back to back; on a loaded machine both channels
# are ready when the test's select runs, which picks either at random and
# failed with "gathering finished without relay candidate" though the
# candidate had come (once in CI, 2026-12-04, load ~4; 30 of 30 alone).
# Once gathering is done, look for the candidate before failing.
grep -q 'require.Fail(t, "gathering finished without relay candidate")' gather_vnet_test.go
perl -0pi -e 's/\tcase <-done:\n\t\trequire\.Fail\(t, "gathering finished without relay candidate"\)/\tcase <-done:\n\t\tselect {\n\t\tcase cand := <-relayCandidates:\n\t\t\trequire.Equal(t, CandidateTypeRelay, cand.Type())\n\t\t\trequire.Equal(t, "10.0.0.3", cand.Address())\n\t\tdefault:\n\t\t\trequire.Fail(t, "gathering finished without relay candidate")\n\t\t}/' gather_vnet_test.go
grep -q 'case cand := <-relayCandidates:' gather_vnet_test.go
test "$(grep -c 'case cand := <-relayCandidates:' gather_vnet_test.go)" -ge 2
