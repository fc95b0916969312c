package signaling

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Tombstones let a second opener of a used or expired link get a precise
// error instead of "unknown" for this long after the ticket's expiry.
const tombstoneGrace = 24 * time.Hour

// MemoryStore is the single-instance Store.
type MemoryStore struct {
	now func() time.Time

	mu       sync.Mutex
	tickets  map[string]*memTicket
	sessions map[string]memSession
	slots    map[string]memSlot
	links    map[string]time.Time // ticket id -> in use until
	subs     map[string][]memSub
}

type memSub struct {
	c    chan []byte
	done <-chan struct{}
}

type memTicket struct {
	t    Ticket
	used bool
}

type memSession struct {
	s       Session
	expires time.Time
}

type memSlot struct {
	conn    string
	expires time.Time
}

// NewMemoryStore returns an empty store; now is its clock (time.Now if nil).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{
		now:      now,
		tickets:  make(map[string]*memTicket),
		sessions: make(map[string]memSession),
		slots:    make(map[string]memSlot),
		links:    make(map[string]time.Time),
		subs:     make(map[string][]memSub),
	}
}

func (m *MemoryStore) gcLocked(now time.Time) {
	for id, t := range m.tickets {
		if now.After(t.t.Expires.Add(tombstoneGrace)) {
			delete(m.tickets, id)
		}
	}
	for id, s := range m.sessions {
		if now.After(s.expires) {
			delete(m.sessions, id)
		}
	}
	for k, s := range m.slots {
		if now.After(s.expires) {
			delete(m.slots, k)
		}
	}
	for id, until := range m.links {
		if now.After(until) {
			delete(m.links, id)
		}
	}
}

func (m *MemoryStore) KeepLink(_ context.Context, id string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if until.After(m.links[id]) {
		m.links[id] = until
	}
	return nil
}

func (m *MemoryStore) EndLink(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.links, id)
	return nil
}

func (m *MemoryStore) LinkAlive(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now().Before(m.links[id]), nil
}

// GC drops expired entries; the server calls it periodically.
func (m *MemoryStore) GC() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gcLocked(m.now())
}

func (m *MemoryStore) CreateTicket(_ context.Context, t Ticket) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tickets[t.ID]; ok {
		return ErrExists
	}
	m.tickets[t.ID] = &memTicket{t: t}
	return nil
}

func (m *MemoryStore) ConsumeTicket(_ context.Context, id string, now time.Time) (Ticket, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tickets[id]
	switch {
	case !ok:
		return Ticket{}, ErrNotFound
	case t.used:
		return Ticket{}, ErrUsed
	case !now.Before(t.t.Expires):
		return Ticket{}, ErrExpired
	}
	t.used = true
	return t.t, nil
}

func (m *MemoryStore) DeleteTicket(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A used or expired ticket stays as a tombstone, so a late opener
	// hears "used" or "expired" rather than "unknown".
	if t, ok := m.tickets[id]; ok && !t.used && m.now().Before(t.t.Expires) {
		delete(m.tickets, id)
	}
	return nil
}

func (m *MemoryStore) PutSession(_ context.Context, s Session, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.sessions[s.ID]; ok && m.now().Before(old.expires) {
		return ErrExists
	}
	m.sessions[s.ID] = memSession{s: s, expires: m.now().Add(ttl)}
	return nil
}

func (m *MemoryStore) GetSession(_ context.Context, id string) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok || !m.now().Before(s.expires) {
		return Session{}, ErrNotFound
	}
	return s.s, nil
}

func (m *MemoryStore) TouchSession(_ context.Context, id string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	// An expired session stays gone, as GetSession already reports it,
	// even if GC has not removed it yet.
	if !ok || !m.now().Before(s.expires) {
		return ErrNotFound
	}
	s.expires = m.now().Add(ttl)
	m.sessions[id] = s
	return nil
}

func (m *MemoryStore) DeleteSession(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, id)
	return nil
}

func slotKey(key, role string) string { return key + "|" + role }

func (m *MemoryStore) ClaimSlot(_ context.Context, key, role, conn string, ttl time.Duration) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := slotKey(key, role)
	prev := ""
	if s, ok := m.slots[k]; ok && m.now().Before(s.expires) {
		prev = s.conn
	}
	m.slots[k] = memSlot{conn: conn, expires: m.now().Add(ttl)}
	return prev, nil
}

func (m *MemoryStore) RefreshSlot(_ context.Context, key, role, conn string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := slotKey(key, role)
	s, ok := m.slots[k]
	if !ok || s.conn != conn || !m.now().Before(s.expires) {
		return false, nil
	}
	s.expires = m.now().Add(ttl)
	m.slots[k] = s
	return true, nil
}

func (m *MemoryStore) Slot(_ context.Context, key, role string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.slots[slotKey(key, role)]; ok && m.now().Before(s.expires) {
		return s.conn, nil
	}
	return "", nil
}

func (m *MemoryStore) ReleaseSlot(_ context.Context, key, role, conn string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := slotKey(key, role)
	if s, ok := m.slots[k]; ok && s.conn == conn {
		delete(m.slots, k)
	}
	return nil
}

func (m *MemoryStore) Publish(_ context.Context, instance string, msg []byte) error {
	m.mu.Lock()
	subs := m.subs[instance]
	m.mu.Unlock()
	for _, s := range subs {
		select {
		case s.c <- msg:
		case <-s.done: // subscriber gone: its connections are gone too
		}
	}
	return nil
}

func (m *MemoryStore) Subscribe(ctx context.Context, instance string) (<-chan []byte, error) {
	// Unbuffered delivery would couple publishers to the dispatcher; the
	// dispatcher only hands messages to per-connection inboxes, so a modest
	// buffer is plenty.
	c := make(chan []byte, 1024)
	m.mu.Lock()
	m.subs[instance] = append(m.subs[instance], memSub{c: c, done: ctx.Done()})
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		defer m.mu.Unlock()
		subs := m.subs[instance]
		for i, s := range subs {
			if s.c == c {
				m.subs[instance] = append(subs[:i], subs[i+1:]...)
				break
			}
		}
		if len(m.subs[instance]) == 0 {
			delete(m.subs, instance)
		}
	}()
	return c, nil
}

func (m *MemoryStore) Stats(context.Context) (StoreStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var st StoreStats
	for _, t := range m.tickets {
		if !t.used && now.Before(t.t.Expires) {
			st.LiveTickets++
		}
	}
	for _, s := range m.sessions {
		if now.Before(s.expires) {
			st.Sessions++
		}
	}
	return st, nil
}

func (m *MemoryStore) LiveTickets(_ context.Context, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var ids []string
	for id, t := range m.tickets {
		if !t.used && now.Before(t.t.Expires) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}
