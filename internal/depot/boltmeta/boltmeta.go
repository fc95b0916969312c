// Package boltmeta keeps the metadata of stored transfers (depot.Meta) in
// one embedded database file beside the data, for a single ferry instance.
//
// Every change is one bbolt transaction, fsynced before it returns, so what
// a call acknowledged survives kill -9 or a power cut, and a crash between
// two calls leaves the file as after the first. The file is locked while
// open: a second process gets ErrLocked instead of a second writer.
//
// Layout: bucket "transfers" maps id to the Transfer as JSON; bucket "usage"
// holds the bytes stored in all ("total") and per owner ("o:" + owner) as
// 8-byte big-endian integers, changed in the same transaction as the record,
// so that Create checks a quota without reading every record.
package boltmeta

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/depot"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrLocked is Open's error when another process has the file open.
var ErrLocked = errors.New("boltmeta: database file is in use by another process")

// DefaultLockTimeout is how long Open waits for another process to let go
// of the file.
const DefaultLockTimeout = 5 * time.Second

var (
	bucketTransfers = []byte("transfers")
	bucketUsage     = []byte("usage")
	keyTotal        = []byte("total")
)

func ownerKey(owner string) []byte { return []byte("o:" + owner) }

// Options configure Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock (DefaultLockTimeout if 0).
	LockTimeout time.Duration
}

// Meta is a depot.Meta in a bbolt file. Its methods are safe for
// concurrent use; bbolt runs one writing transaction at a time.
type Meta struct {
	db   *bolt.DB
	path string
}

var _ depot.Meta = (*Meta)(nil)

// Open opens or creates the database file at path with the default options.
func Open(path string) (*Meta, error) { return OpenWith(path, Options{}) }

// OpenWith opens or creates the database file at path.
func OpenWith(path string, o Options) (*Meta, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	// NoSync stays false: every commit is fsynced before it returns.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %v for its lock)", ErrLocked, path, o.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("boltmeta: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTransfers, bucketUsage} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltmeta: open %s: %w", path, err)
	}
	return &Meta{db: db, path: path}, nil
}

// Close releases the file and its lock.
func (m *Meta) Close() error { return m.db.Close() }

// Check verifies the file (bbolt's page-level consistency check) and that
// the usage counters add up to the stored records' sizes.
func (m *Meta) Check() error {
	// In a writing transaction, rolled back: bbolt's check is safe beside
	// other transactions only there.
	err := m.db.Update(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("boltmeta: %s is damaged: %w", m.path, errors.Join(errs...))
		}
		var total int64
		owners := map[string]int64{}
		err := tx.Bucket(bucketTransfers).ForEach(func(k, v []byte) error {
			t, err := decode(k, v)
			if err != nil {
				return err
			}
			if t.State != depot.Gone { // its usage was freed
				total += t.Size
				owners[t.Owner] += t.Size
			}
			return nil
		})
		if err != nil {
			return err
		}
		u := tx.Bucket(bucketUsage)
		if got := getInt(u, keyTotal); got != total {
			return fmt.Errorf("boltmeta: usage counter total = %d, records add up to %d", got, total)
		}
		n := 0
		err = u.ForEach(func(k, v []byte) error {
			if string(k) == string(keyTotal) {
				return nil
			}
			n++
			owner, ok := strings.CutPrefix(string(k), "o:")
			if !ok {
				return fmt.Errorf("boltmeta: unknown usage counter %q", k)
			}
			if got := getInt(u, k); got != owners[owner] {
				return fmt.Errorf("boltmeta: usage counter of %q = %d, records add up to %d", owner, got, owners[owner])
			}
			return nil
		})
		if err != nil {
			return err
		}
		for owner, size := range owners {
			if size == 0 {
				delete(owners, owner) // a counter at zero is dropped
			}
		}
		if n != len(owners) {
			return fmt.Errorf("boltmeta: %d owner counters for %d owners", n, len(owners))
		}
		return errRollback
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

// errRollback ends a writing transaction that has nothing to write.
var errRollback = errors.New("rollback")

func getInt(b *bolt.Bucket, k []byte) int64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// addInt adds d to counter k, dropping it at zero so that owners who no
// longer store anything leave nothing behind.
func addInt(b *bolt.Bucket, k []byte, d int64) error {
	n := getInt(b, k) + d
	if n == 0 {
		return b.Delete(k)
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(n))
	return b.Put(k, v)
}

func decode(k, v []byte) (depot.Transfer, error) {
	var t depot.Transfer
	if err := json.Unmarshal(v, &t); err != nil {
		return t, fmt.Errorf("boltmeta: record %q: %w", k, err)
	}
	return t, nil
}

// update runs fn in a writing transaction unless ctx is done already: a
// bbolt transaction cannot be interrupted, and each is short.
func (m *Meta) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.db.Update(fn)
}

func (m *Meta) Create(ctx context.Context, t depot.Transfer, q depot.Quota) error {
	if t.ID == "" || t.Size < 0 {
		return fmt.Errorf("boltmeta: bad record (id %q, size %d)", t.ID, t.Size)
	}
	v, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("boltmeta: %w", err)
	}
	return m.update(ctx, func(tx *bolt.Tx) error {
		b, u := tx.Bucket(bucketTransfers), tx.Bucket(bucketUsage)
		id := []byte(t.ID)
		if b.Get(id) != nil {
			return depot.ErrExists
		}
		owner := ownerKey(t.Owner)
		if q.PerOwner > 0 && getInt(u, owner)+t.Size > q.PerOwner ||
			q.Total > 0 && getInt(u, keyTotal)+t.Size > q.Total {
			return depot.ErrQuota
		}
		if err := b.Put(id, v); err != nil {
			return err
		}
		if err := addInt(u, owner, t.Size); err != nil {
			return err
		}
		return addInt(u, keyTotal, t.Size)
	})
}

func (m *Meta) Get(ctx context.Context, id string) (depot.Transfer, error) {
	var t depot.Transfer
	if err := ctx.Err(); err != nil {
		return t, err
	}
	err := m.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTransfers).Get([]byte(id))
		if v == nil {
			return depot.ErrNotFound
		}
		var err error
		t, err = decode([]byte(id), v)
		return err
	})
	return t, err
}

// change applies fn to record id and stores the result if fn returns nil.
func (m *Meta) change(ctx context.Context, id string, fn func(t *depot.Transfer) error) error {
	return m.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTransfers)
		v := b.Get([]byte(id))
		if v == nil {
			return depot.ErrNotFound
		}
		t, err := decode([]byte(id), v)
		if err != nil {
			return err
		}
		if err := fn(&t); err != nil {
			return err
		}
		if v, err = json.Marshal(t); err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
}

func (m *Meta) AddPart(ctx context.Context, id string, n int) error {
	err := m.change(ctx, id, func(t *depot.Transfer) error {
		switch {
		case n >= 0 && n < t.Parts:
			return errRollback
		case n != t.Parts:
			return depot.ErrPart
		case t.State != depot.Uploading:
			return depot.ErrState
		}
		t.Parts++
		return nil
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

func (m *Meta) SetReady(ctx context.Context, id string) error {
	return m.change(ctx, id, func(t *depot.Transfer) error {
		if t.State != depot.Uploading {
			return depot.ErrState
		}
		t.State = depot.Ready
		return nil
	})
}

func (m *Meta) CountDownload(ctx context.Context, id string) (int, error) {
	var used int
	err := m.change(ctx, id, func(t *depot.Transfer) error {
		used = t.Used
		if t.State != depot.Ready {
			return depot.ErrState
		}
		if t.Limit > 0 && t.Used >= t.Limit {
			return depot.ErrUsedUp
		}
		t.Used++
		used = t.Used
		return nil
	})
	return used, err
}

func (m *Meta) SetGone(ctx context.Context, id string) error {
	return m.remove(ctx, id, false)
}

func (m *Meta) Delete(ctx context.Context, id string) error {
	return m.remove(ctx, id, true)
}

// remove frees a record's usage unless it was freed already (Gone), and
// then deletes the record or marks it Gone.
func (m *Meta) remove(ctx context.Context, id string, del bool) error {
	return m.update(ctx, func(tx *bolt.Tx) error {
		b, u := tx.Bucket(bucketTransfers), tx.Bucket(bucketUsage)
		v := b.Get([]byte(id))
		if v == nil {
			if del {
				return nil
			}
			return depot.ErrNotFound
		}
		t, err := decode([]byte(id), v)
		if err != nil {
			return err
		}
		wasGone := t.State == depot.Gone
		if del {
			err = b.Delete([]byte(id))
		} else if !wasGone {
			t.State = depot.Gone
			if v, err = json.Marshal(t); err == nil {
				err = b.Put([]byte(id), v)
			}
		}
		if err != nil || wasGone {
			return err
		}
		if err := addInt(u, ownerKey(t.Owner), -t.Size); err != nil {
			return err
		}
		return addInt(u, keyTotal, -t.Size)
	})
}

// listBatch is how many records List reads in one read-only transaction.
const listBatch = 256

// List reads the records in batches, each in a short read-only transaction,
// and calls fn between them: memory stays bounded, and fn may call the other
// methods (a janitor deleting what it finds) without waiting on a
// transaction of its own. A record created or deleted meanwhile may or may
// not be seen.
func (m *Meta) List(ctx context.Context, fn func(depot.Transfer) error) error {
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := make([]depot.Transfer, 0, listBatch)
		err := m.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketTransfers).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && string(k) == string(after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(batch) < listBatch; k, v = c.Next() {
				t, err := decode(k, v)
				if err != nil {
					return err
				}
				batch = append(batch, t)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, t := range batch {
			if err := fn(t); err != nil {
				return err
			}
		}
		after = []byte(batch[len(batch)-1].ID)
	}
}
