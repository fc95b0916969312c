module github.com/ferrydev/ferry

go 1.26

// Pinned to versions the module proxy here resolves: pion/webrtc v4.2.21+ and some
// pion/transport v5 releases are refused, so webrtc stays at v4.2.20 and turn at v4.1.4.
require github.com/zeebo/blake3 v0.2.4

require github.com/klauspost/cpuid/v2 v2.0.12 // indirect
