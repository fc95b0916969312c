package depot

import (
	"context"
	"errors"
	"slices"
	"time"
)

// tombstone is how long a removed transfer's record stays after its
// expiry, so that its receivers learn why the link no longer works.
const tombstone = 24 * time.Hour

// Janitor removes, once, every transfer that expired, was used up or was
// not uploaded in time: its blobs go, and its record turns Gone (its bytes
// free for quotas) until a day after its expiry. It also removes blobs the
// metadata does not know (left by a crash between the two steps of creating
// a transfer).
func (s *Service) Janitor(ctx context.Context) {
	now := s.now()
	var gone, dead []Transfer
	var n int
	var bytes int64
	err := s.cfg.Meta.List(ctx, func(t Transfer) error {
		switch {
		case t.State == Gone:
			if !now.Before(t.Expires.Add(tombstone)) {
				dead = append(dead, t)
			}
			return nil
		case !now.Before(t.Expires) || (t.Limit > 0 && t.Used >= t.Limit) ||
			(t.State == Uploading && !now.Before(t.Created.Add(s.cfg.UploadWithin))):
			gone = append(gone, t)
			return nil
		}
		n++
		bytes += t.Size
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.log.Error("stored transfers: janitor cannot list", "err", err)
		s.cfg.Observe(Event{Kind: EventBackend, Reason: "meta"})
	}
	if err == nil {
		s.mu.Lock()
		s.count, s.bytes = n, bytes
		s.mu.Unlock()
	}
	for _, t := range gone {
		if ctx.Err() != nil {
			return
		}
		if err := s.retire(ctx, t.ID); err != nil {
			s.log.Error("stored transfers: janitor cannot remove", "id", t.ID, "err", err)
			continue
		}
		kind := EventExpired
		if t.Limit > 0 && t.Used >= t.Limit {
			kind = EventUsedUp
		}
		reason := ""
		if t.State == Uploading {
			reason = "upload unfinished"
		}
		s.cfg.Observe(Event{Kind: kind, ID: t.ID, Owner: t.Owner, Bytes: t.Size, Used: t.Used, Limit: t.Limit, Reason: reason})
	}
	for _, t := range dead {
		if err := s.drop(ctx, t.ID); err != nil && ctx.Err() == nil {
			s.log.Error("stored transfers: janitor cannot forget", "id", t.ID, "err", err)
		}
	}
	s.orphans(ctx)
	s.cfg.Observe(Event{Kind: EventJanitor})
}

// orphans removes blobs without a record that were orphans on the previous
// run too: a transfer being created has blobs a moment before its record.
func (s *Service) orphans(ctx context.Context) {
	seen := map[string]bool{}
	err := s.cfg.Blobs.List(ctx, func(id string) error {
		if _, err := s.cfg.Meta.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			return err
		}
		seen[id] = true
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("stored transfers: janitor cannot list blobs", "err", err)
			s.cfg.Observe(Event{Kind: EventBackend, Reason: "blobs"})
		}
		return
	}
	s.mu.Lock()
	prev := s.orphaned
	s.orphaned = seen
	s.mu.Unlock()
	for id := range seen {
		if !prev[id] {
			continue
		}
		if _, err := s.cfg.Meta.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			continue
		}
		if err := s.cfg.Blobs.Delete(ctx, id); err != nil {
			s.log.Error("stored transfers: janitor cannot remove orphan", "id", id, "err", err)
			continue
		}
		s.log.Info("stored transfers: removed blobs without a record", "id", id)
	}
}

// Usage returns how many transfers are kept and their ciphertext bytes, as
// the janitor last counted them.
func (s *Service) Usage() (transfers int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, s.bytes
}

// Transfers returns up to n stored transfers, newest first (the admin page).
func (s *Service) Transfers(ctx context.Context, n int) ([]Transfer, error) {
	var all []Transfer
	err := s.cfg.Meta.List(ctx, func(t Transfer) error {
		all = append(all, t)
		return nil
	})
	slices.SortFunc(all, func(a, b Transfer) int { return b.Created.Compare(a.Created) })
	return all[:min(n, len(all))], err
}

// Remove deletes a stored transfer for the operator; who says who did.
func (s *Service) Remove(ctx context.Context, id, who string) error {
	t, err := s.cfg.Meta.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := s.drop(ctx, id); err != nil {
		return err
	}
	s.cfg.Observe(Event{Kind: EventDeleted, ID: id, Owner: t.Owner, Bytes: t.Size, Reason: "by the operator " + who})
	return nil
}
