package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/ferrydev/ferry/internal/audit"
	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/depot/boltmeta"
	"github.com/ferrydev/ferry/internal/depot/diskblob"
	"github.com/ferrydev/ferry/internal/depot/redismeta"
	"github.com/ferrydev/ferry/internal/depot/s3blob"
)

// setupStore opens the storage of stored transfers: ciphertext on disk or
// in a bucket, metadata in a database file beside it or, with --redis,
// shared by every instance.
func (s *Server) setupStore(ctx context.Context) error {
	st := s.cfg.Store
	if !st.Enabled {
		return nil
	}
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		return fmt.Errorf("--store-dir: %w", err)
	}
	var blobs depot.Blobs
	maxParts := 0
	if st.S3.Endpoint != "" {
		maxParts = 10000 // S3's limit of parts per multipart upload
		b, err := s3blob.New(s3blob.Config{Endpoint: st.S3.Endpoint, Bucket: st.S3.Bucket, Region: st.S3.Region,
			Prefix: st.S3.Prefix, TLS: !st.S3.Insecure, CredentialsFile: st.S3.CredentialsFile})
		if err != nil {
			return err
		}
		blobs = b
	} else {
		b, err := diskblob.Open(filepath.Join(st.Dir, "blobs"))
		if err != nil {
			return err
		}
		s.closers = append(s.closers, b.Close)
		blobs = b
	}
	var meta depot.Meta
	if s.cfg.Redis != "" {
		m, err := redismeta.New(ctx, s.cfg.Redis)
		if err != nil {
			return err
		}
		s.closers = append(s.closers, m.Close)
		meta = m
	} else {
		m, err := boltmeta.Open(filepath.Join(st.Dir, "meta.db"))
		if err != nil {
			return fmt.Errorf("--store-dir %s: %w (each instance needs its own --store-dir, or share metadata with --redis)", st.Dir, err)
		}
		s.closers = append(s.closers, m.Close)
		meta = m
	}
	maxSize := int64(st.MaxSize)
	if maxSize == 0 {
		maxSize = int64(s.cfg.MaxTransfer)
	}
	storeFrom := prefixes(st.AllowFrom)
	if len(storeFrom) == 0 {
		storeFrom = s.createFrom
	}
	var err error
	s.depot, err = depot.New(depot.Config{
		Blobs: blobs, Meta: meta, Now: s.now, Logger: s.log, ClientIP: s.resolveIP.ClientIP,
		MayStore: func(r *http.Request, ip netip.Addr) (string, error) {
			if len(storeFrom) > 0 && !inAny(storeFrom, ip) {
				return "", depot.ErrForbidden
			}
			if s.createLimit != nil && !s.createLimit.Allow(ip) {
				return "", depot.ErrRateLimited
			}
			return s.senderOf(r, ip, depot.ErrSignInRequired, depot.ErrRateLimited)
		},
		LiveToken:     s.storeToken,
		MaxSize:       maxSize,
		MaxParts:      maxParts,
		DefaultExpire: st.DefaultExpire, MaxExpire: st.MaxExpire,
		MaxDownloads: st.MaxDownloads, Unlimited: st.Unlimited,
		Quota:        depot.Quota{PerOwner: int64(st.QuotaPerOwner), Total: int64(st.QuotaTotal)},
		UploadWithin: st.UploadWithin,
		Observe:      s.observeStored,
	})
	return err
}

// storeToken is what a live link's sender shows to store its transfer
// under the link's id: a MAC of the id under the server's cookie key, so
// every instance with the same --cookie-secret agrees.
func (s *Server) storeToken(id string) string {
	m := hmac.New(sha256.New, s.storeKey)
	m.Write([]byte("ferry store\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// liveStoreToken hands the token to senders the store policy admits.
func (s *Server) liveStoreToken(r *http.Request, id string) string {
	if s.depot == nil {
		return ""
	}
	return s.storeToken(id)
}

// observeStored turns stored-transfer events into metrics and audit records.
func (s *Server) observeStored(e depot.Event) {
	m := s.metrics
	rec := audit.Event{Ticket: e.ID, User: e.Owner, Bytes: e.Bytes, Reason: e.Reason}
	if e.IP.IsValid() {
		rec.IP = e.IP.String()
	}
	switch e.Kind {
	case depot.EventPartBytes:
		m.StoredUploadBytes.Add(float64(e.Bytes))
		return
	case depot.EventJanitor:
		m.StoredJanitorRuns.Inc()
		return
	case depot.EventBackend:
		m.StoredBackendErrors.WithLabelValues(e.Reason).Inc()
		return
	case depot.EventRefused:
		m.StoredRefused.WithLabelValues(e.Reason).Inc()
	case depot.EventCreated:
		m.StoredCreated.Inc()
	case depot.EventUploaded:
		m.StoredUploads.Inc()
	case depot.EventStarted:
		m.StoredDownloads.WithLabelValues("started").Inc()
	case depot.EventVerified:
		m.StoredDownloads.WithLabelValues("verified").Inc()
	case depot.EventAborted:
		m.StoredDownloads.WithLabelValues("aborted").Inc()
	case depot.EventDeleted, depot.EventExpired, depot.EventUsedUp:
		m.StoredRemoved.WithLabelValues(e.Kind).Inc()
	}
	rec.Event = e.Kind
	s.audit.Record(rec)
}

// storeKey is the key of store tokens: from --cookie-secret, which every
// instance shares, else random (one instance).
func storeKey(cookieSecret string) []byte {
	if cookieSecret == "" {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		return k
	}
	h := sha256.Sum256([]byte("ferry store tokens\x00" + cookieSecret))
	return h[:]
}

// SweepStored runs the stored-transfer janitor once now (tests; it runs
// every minute on its own).
func (s *Server) SweepStored(ctx context.Context) {
	if s.depot != nil {
		s.depot.Janitor(ctx)
	}
}

// StoreToken returns the token the sender of live link id is given to store
// its transfer (tests that play such a sender).
func (s *Server) StoreToken(id string) string { return s.storeToken(id) }
