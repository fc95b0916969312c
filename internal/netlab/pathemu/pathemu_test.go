package pathemu

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// packetMsg builds a NFQNL_MSG_PACKET as the kernel sends it: an
// NFQA_PACKET_HDR among other attributes.
func packetMsg(queue uint16, id uint32) []byte {
	hdr := binary.BigEndian.AppendUint32(nil, id)
	hdr = append(hdr, 0x08, 0x00, 2) // hw protocol (IPv4), hook (FORWARD)
	mark := binary.BigEndian.AppendUint32(nil, 7)
	return appendMsg(nil, msgPacket, 0, 0, unix.AF_INET, queue, attr{3, mark}, attr{attrPacketHdr, hdr})
}

func TestParseMessages(t *testing.T) {
	var b []byte
	b = append(b, packetMsg(2, 41)...)
	b = append(b, packetMsg(3, 1<<31+5)...)
	var got []packet
	if err := parseMessages(b, func(p packet) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	want := []packet{{2, 41}, {3, 1<<31 + 5}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// A NLMSG_ERROR carrying -ENOENT (a verdict for a packet that is gone)
	// is reported after the packets around it are taken.
	e := binary.NativeEndian.AppendUint32(nil, 36)
	e = binary.NativeEndian.AppendUint16(e, unix.NLMSG_ERROR)
	e = append(e, make([]byte, 10)...)
	errno := -int32(unix.ENOENT)
	e = binary.NativeEndian.AppendUint32(e, uint32(errno))
	e = append(e, make([]byte, 16)...)
	got = nil
	err := parseMessages(append(e, packetMsg(0, 9)...), func(p packet) { got = append(got, p) })
	if !errors.Is(err, ErrKernel) || !errors.Is(err, unix.ENOENT) || len(got) != 1 {
		t.Fatalf("err %v, packets %v", err, got)
	}
	if err := parseMessages(packetMsg(0, 1)[:30], func(packet) {}); !errors.Is(err, ErrMessage) {
		t.Fatalf("truncated message: %v", err)
	}
}

func TestVerdictEncoding(t *testing.T) {
	b := appendVerdict(nil, 5, 1234, verdictAccept, true)
	if len(b) != verdictMsgLn {
		t.Fatalf("length %d, want %d", len(b), verdictMsgLn)
	}
	if l := binary.NativeEndian.Uint32(b); int(l) != len(b) {
		t.Fatalf("header length %d", l)
	}
	if typ := binary.NativeEndian.Uint16(b[4:]); typ != msgVerdictBatch {
		t.Fatalf("type %#x", typ)
	}
	if q := binary.BigEndian.Uint16(b[18:]); q != 5 {
		t.Fatalf("queue %d", q)
	}
	if v, id := binary.BigEndian.Uint32(b[24:]), binary.BigEndian.Uint32(b[28:]); v != verdictAccept || id != 1234 {
		t.Fatalf("verdict %d id %d", v, id)
	}
}

func TestReleaseInOrderWithOneBatchVerdict(t *testing.T) {
	s := newScheduler([]Queue{{Num: 0, Delay: 10 * time.Millisecond}, {Num: 1, Delay: 20 * time.Millisecond}}, 1)
	for i := range uint32(5) {
		s.arrive(packet{0, i + 1}, time.Duration(i)*time.Millisecond)
		s.arrive(packet{1, i + 1}, time.Duration(i)*time.Millisecond)
	}
	vs, next, ok := s.release(12*time.Millisecond, nil)
	// Queue 0: ids 1..3 were due at 10, 11, 12 ms; id 4 is next, at 13.
	if len(vs) != 1 || vs[0] != (verdict{queue: 0, id: 3, verdict: verdictAccept, batch: true}) {
		t.Fatalf("verdicts %+v", vs)
	}
	if !ok || next != 13*time.Millisecond {
		t.Fatalf("next %v %v", next, ok)
	}
	vs, _, _ = s.release(time.Second, nil)
	if len(vs) != 2 || vs[0].id != 5 || vs[1] != (verdict{queue: 1, id: 5, verdict: verdictAccept, batch: true}) {
		t.Fatalf("verdicts %+v", vs)
	}
	if _, _, ok := s.release(2*time.Second, nil); ok {
		t.Fatal("nothing should wait")
	}
	st := s.stats()
	if st[0].Received != 5 || st[0].Released != 5 || st[1].Released != 5 || st[0].Held != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A dropped packet's verdict goes out between the batches around it: a
// batch verdict sent first would let it through.
func TestDropSplitsTheBatch(t *testing.T) {
	s := newScheduler([]Queue{{Num: 0, Delay: time.Millisecond, Loss: 0.5}}, 7)
	for i := range uint32(200) {
		s.arrive(packet{0, i + 1}, 0)
	}
	vs, _, _ := s.release(time.Second, nil)
	lastBatch := uint32(0)
	drops := 0
	for _, v := range vs {
		if v.verdict == verdictDrop {
			drops++
			if v.id <= lastBatch {
				t.Fatalf("drop of %d after a batch up to %d", v.id, lastBatch)
			}
			continue
		}
		if !v.batch {
			t.Fatalf("single accept %+v on a queue without reordering", v)
		}
		lastBatch = v.id
	}
	st := s.stats()[0]
	if drops != int(st.Dropped) || drops+int(st.Released) != 200 || drops < 60 || drops > 140 {
		t.Fatalf("%d drop verdicts, stats %+v", drops, st)
	}
}

func TestLossShare(t *testing.T) {
	const n = 200000
	for _, loss := range []float64{0.002, 0.01, 0.2} {
		s := newScheduler([]Queue{{Num: 0, Loss: loss}}, 42)
		for i := range uint32(n) {
			s.arrive(packet{0, i}, 0)
		}
		got := float64(s.stats()[0].Dropped) / n
		sigma := math.Sqrt(loss * (1 - loss) / n)
		if math.Abs(got-loss) > 5*sigma {
			t.Errorf("loss %v: dropped %.4f%%", loss, 100*got)
		}
	}
}

func TestReorder(t *testing.T) {
	s := newScheduler([]Queue{{Num: 0, Delay: 5 * time.Millisecond, Reorder: 0.1, ReorderGap: 3 * time.Millisecond}}, 3)
	// One packet every 100 µs for 100 ms.
	for i := range uint32(1000) {
		s.arrive(packet{0, i + 1}, time.Duration(i)*100*time.Microsecond)
	}
	var order []uint32
	for now := time.Duration(0); now < time.Second; now += 100 * time.Microsecond {
		var vs []verdict
		vs, _, _ = s.release(now, vs)
		for _, v := range vs {
			if v.batch || v.verdict != verdictAccept {
				t.Fatalf("verdict %+v", v)
			}
			order = append(order, v.id)
		}
	}
	if len(order) != 1000 {
		t.Fatalf("%d released", len(order))
	}
	late := 0
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			late++
		}
	}
	st := s.stats()[0]
	if st.Reordered < 50 || st.Reordered > 150 || late == 0 || late > int(st.Reordered) {
		t.Fatalf("reordered %d, %d packets arrived after a later one", st.Reordered, late)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []Config{
		{},
		{Queues: []Queue{{Num: 1}, {Num: 1}}},
		{Queues: []Queue{{Num: 1, Loss: 1.5}}},
		{Queues: []Queue{{Num: 1, Delay: -time.Second}}},
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
