package peer

import (
	"sync"

	"github.com/pion/webrtc/v4"
)

// pathMeter attributes the bytes of one peer connection's ICE transport to
// the kind of candidate pair selected when they crossed it, direct or
// relayed (PathBytes). ICE's byte counters are atomics that outlive the
// connection, so the count holds after the peer closed it.
type pathMeter struct {
	ice *webrtc.ICETransport

	mu       sync.Mutex
	selected bool   // a pair was selected (bytes before are ICE's own checks)
	relay    bool   // the selected pair goes through a relay
	mark     uint64 // the byte count at the last change of pair
	carried  PathBytes
}

// newPathMeter follows pc's selected candidate pair; nil if pc has no ICE
// transport.
func newPathMeter(pc *webrtc.PeerConnection) *pathMeter {
	t := iceTransport(pc)
	if t == nil {
		return nil
	}
	m := &pathMeter{ice: t}
	m.ice.OnSelectedCandidatePairChange(m.changed)
	return m
}

func (m *pathMeter) total() uint64 {
	st := m.ice.Stats()
	return st.BytesSent + st.BytesReceived
}

func (m *pathMeter) changed(p *webrtc.ICECandidatePair) {
	n := m.total()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addLocked(n)
	m.selected = true
	m.relay = relayedPair(p)
}

// addLocked attributes the bytes since the last mark to the selected pair.
func (m *pathMeter) addLocked(n uint64) {
	d := n - min(n, m.mark)
	m.mark = max(n, m.mark)
	switch {
	case !m.selected:
	case m.relay:
		m.carried.Relay += d
	default:
		m.carried.Direct += d
	}
}

// bytes is what the connection carried so far, per kind of path.
func (m *pathMeter) bytes() PathBytes {
	if m == nil {
		return PathBytes{}
	}
	n := m.total()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addLocked(n)
	return m.carried
}
