package depot

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/stored"
)

// Path is where the API lives (PROTOCOL.md §6.5).
const Path = "/api/v1/stored"

// ReadHeader carries the read token (§6.1) of a receiver's requests.
const ReadHeader = "Ferry-Read"

// partTime bounds the upload of one part: 8 MiB at 16 KiB/s.
const partTime = 10 * time.Minute

// Register adds the API's routes to mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+Path, s.create)
	mux.HandleFunc("GET "+Path+"/{id}", s.status)
	mux.HandleFunc("PUT "+Path+"/{id}/parts/{n}", s.putPart)
	mux.HandleFunc("PUT "+Path+"/{id}/manifest", s.putManifest)
	mux.HandleFunc("DELETE "+Path+"/{id}", s.delete)
	mux.HandleFunc("GET "+Path+"/{id}/manifest", s.getManifest)
	mux.HandleFunc("GET "+Path+"/{id}/data", s.getData)
	mux.HandleFunc("POST "+Path+"/{id}/verified", s.verified)
}

// Error codes of the API, in {"error": code}; the edge words them.
const (
	codeBadRequest = "bad_request"
	codeForbidden  = "forbidden"
	codeSignIn     = "sign_in_required"
	codeRate       = "rate_limited"
	codeTooLarge   = "too_large"
	codeQuota      = "quota"
	codeFull       = "storage_full"
	codeNotFound   = "not_found"
	codeExpired    = "expired"
	codeUsedUp     = "used_up"
	codeNotReady   = "not_ready"
	codeConflict   = "conflict"
	codeInternal   = "internal"
	// codeDamaged: the stored object is not what was uploaded (shorter than
	// recorded, or gone): fetching again will not help.
	codeDamaged = "damaged"
)

// apiErrors maps errors to status and code, in one place.
var apiErrors = []struct {
	err    error
	status int
	code   string
}{
	{ErrForbidden, http.StatusForbidden, codeForbidden},
	{ErrSignInRequired, http.StatusUnauthorized, codeSignIn},
	{ErrRateLimited, http.StatusTooManyRequests, codeRate},
	{ErrQuota, http.StatusInsufficientStorage, codeQuota},
	{ErrFull, http.StatusInsufficientStorage, codeFull},
	{ErrNotFound, http.StatusNotFound, codeNotFound},
	{ErrExists, http.StatusConflict, codeConflict},
	{ErrUsedUp, http.StatusGone, codeUsedUp},
	{ErrState, http.StatusConflict, codeConflict},
	{ErrPart, http.StatusConflict, codeConflict},
	{ErrRange, http.StatusInternalServerError, codeDamaged},
}

// apiError is a refusal with its code, for errors the API makes itself.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func refuse(status int, code, msg string) error { return &apiError{status, code, msg} }

// fail answers err; internal causes go to the log, never to the client.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, id string, err error) {
	status, code := http.StatusInternalServerError, codeInternal
	var ae *apiError
	if errors.As(err, &ae) {
		status, code = ae.status, ae.code
	} else {
		for _, m := range apiErrors {
			if errors.Is(err, m.err) {
				status, code = m.status, m.code
				break
			}
		}
	}
	if status == http.StatusInternalServerError {
		if code == codeDamaged {
			s.log.Error("stored transfer damaged: its data is shorter than recorded", "id", id, "err", err)
		}
		s.log.Error("stored transfer", "id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		s.cfg.Observe(Event{Kind: EventBackend, ID: id, Reason: "internal"})
	} else {
		s.log.Debug("stored transfer refused", "id", id, "code", code, "err", err)
	}
	if code == codeForbidden || code == codeSignIn || code == codeRate || code == codeQuota || code == codeTooLarge {
		s.cfg.Observe(Event{Kind: EventRefused, ID: id, IP: s.cfg.ClientIP(r), Reason: code})
	}
	writeJSON(w, status, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// CreateRequest is the body of POST /api/v1/stored.
type CreateRequest struct {
	Size      int64  `json:"size"`      // of the data object (sealed)
	ReadToken string `json:"readToken"` // §6.1
	Expire    int64  `json:"expire,omitempty"`
	Downloads *int   `json:"downloads,omitempty"` // nil: 1; 0: unlimited
	// ID and LiveToken store the transfer of a live link under its id.
	ID        string `json:"id,omitempty"`
	LiveToken string `json:"liveToken,omitempty"`
}

// Created is the answer to a CreateRequest.
type Created struct {
	ID         string `json:"id"`
	WriteToken string `json:"writeToken"`
	PartSize   int64  `json:"partSize"`
	Expires    int64  `json:"expires"` // Unix seconds
	Downloads  int    `json:"downloads"`
}

// Status is the answer to GET /api/v1/stored/{id}.
type Status struct {
	State     State `json:"state"`
	Size      int64 `json:"size"`
	Parts     int   `json:"parts"` // parts stored so far (to the writer only)
	PartSize  int64 `json:"partSize"`
	Expires   int64 `json:"expires"`
	Downloads int   `json:"downloads"` // limit; 0: unlimited
	Used      int   `json:"used"`
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	ip := s.cfg.ClientIP(r)
	owner, err := s.cfg.MayStore(r, ip)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	var req CreateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		s.fail(w, r, "", refuse(http.StatusBadRequest, codeBadRequest, "malformed request"))
		return
	}
	plain, ok := stored.PlainSize(req.Size)
	if !ok || len(req.ReadToken) != 22 {
		s.fail(w, r, "", refuse(http.StatusBadRequest, codeBadRequest, "bad size or read token"))
		return
	}
	if (s.cfg.MaxSize > 0 && plain > s.cfg.MaxSize) || (s.cfg.MaxParts > 0 && PartCount(req.Size) > s.cfg.MaxParts) {
		s.fail(w, r, "", refuse(http.StatusRequestEntityTooLarge, codeTooLarge, "too large"))
		return
	}
	expire := s.cfg.DefaultExpire
	if req.Expire > 0 {
		expire = time.Duration(req.Expire) * time.Second
	}
	if req.Expire < 0 || expire > s.cfg.MaxExpire {
		s.fail(w, r, "", refuse(http.StatusBadRequest, codeBadRequest, "expiry out of range"))
		return
	}
	downloads := 1
	if req.Downloads != nil {
		downloads = *req.Downloads
	}
	if downloads < 0 || (downloads == 0 && !s.cfg.Unlimited) || (s.cfg.MaxDownloads > 0 && downloads > s.cfg.MaxDownloads) {
		s.fail(w, r, "", refuse(http.StatusBadRequest, codeBadRequest, "download limit out of range"))
		return
	}
	id := newID()
	if req.ID != "" {
		if s.cfg.LiveToken == nil || !validID(req.ID) || !tokenEqual(req.LiveToken, s.cfg.LiveToken(req.ID)) {
			s.fail(w, r, req.ID, refuse(http.StatusForbidden, codeForbidden, "not this link's sender"))
			return
		}
		id = req.ID
		if _, err := s.cfg.Meta.Get(r.Context(), id); !errors.Is(err, ErrNotFound) {
			if err == nil {
				err = ErrExists
			}
			s.fail(w, r, id, err)
			return
		}
	}
	// The upload begins before the record exists: a crash in between
	// leaves an orphan the janitor removes, never a record without blobs.
	upload, err := s.cfg.Blobs.Begin(r.Context(), id)
	if err != nil {
		s.fail(w, r, id, err)
		return
	}
	now := s.now()
	write := newToken()
	t := Transfer{ID: id, Owner: owner, ReadHash: hashToken(req.ReadToken), WriteHash: hashToken(write),
		Size: req.Size, Created: now, Expires: now.Add(expire), Limit: downloads, State: Uploading, Upload: upload}
	if err := s.cfg.Meta.Create(r.Context(), t, s.cfg.Quota); err != nil {
		if !errors.Is(err, ErrExists) { // an existing transfer's upload is not ours to drop
			_ = s.cfg.Blobs.Delete(context.WithoutCancel(r.Context()), id)
		}
		s.fail(w, r, id, err)
		return
	}
	s.cfg.Observe(Event{Kind: EventCreated, ID: id, IP: ip, Owner: owner, Bytes: req.Size, Limit: downloads})
	writeJSON(w, http.StatusCreated, Created{ID: id, WriteToken: write, PartSize: PartSize,
		Expires: t.Expires.Unix(), Downloads: downloads})
}

func tokenEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// drop removes a transfer's blobs, then its record.
func (s *Service) drop(ctx context.Context, id string) error {
	return s.remove(ctx, id, s.cfg.Meta.Delete)
}

// retire removes a transfer's blobs and marks its record Gone.
func (s *Service) retire(ctx context.Context, id string) error {
	return s.remove(ctx, id, s.cfg.Meta.SetGone)
}

// remove deletes a transfer's blobs, then applies record (Delete or
// SetGone) to its record; a record already gone is no error.
func (s *Service) remove(ctx context.Context, id string, record func(context.Context, string) error) error {
	if err := s.cfg.Blobs.Delete(ctx, id); err != nil {
		s.cfg.Observe(Event{Kind: EventBackend, ID: id, Reason: "blobs"})
		return err
	}
	if err := record(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		s.cfg.Observe(Event{Kind: EventBackend, ID: id, Reason: "meta"})
		return err
	}
	return nil
}

// writer loads the transfer a request with its write token may change.
func (s *Service) writer(r *http.Request) (Transfer, error) {
	id := r.PathValue("id")
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !validID(id) || !ok {
		return Transfer{}, ErrNotFound
	}
	t, err := s.cfg.Meta.Get(r.Context(), id)
	if err != nil {
		return Transfer{}, err
	}
	if !tokenMatches(tok, t.WriteHash) {
		return Transfer{}, ErrNotFound
	}
	return t, nil
}

// reader loads the transfer a request with its read token may fetch, if it
// may still be fetched.
func (s *Service) reader(r *http.Request) (Transfer, error) {
	id := r.PathValue("id")
	if !validID(id) {
		return Transfer{}, ErrNotFound
	}
	t, err := s.cfg.Meta.Get(r.Context(), id)
	if err != nil {
		return Transfer{}, err
	}
	if !tokenMatches(r.Header.Get(ReadHeader), t.ReadHash) {
		return Transfer{}, ErrNotFound
	}
	return t, s.available(t)
}

// available says whether a receiver may fetch t now.
func (s *Service) available(t Transfer) error {
	switch {
	case t.Limit > 0 && t.Used >= t.Limit:
		return ErrUsedUp
	case !s.now().Before(t.Expires) || t.State == Gone:
		return refuse(http.StatusGone, codeExpired, "expired")
	case t.State != Ready:
		return refuse(http.StatusConflict, codeNotReady, "still uploading")
	}
	return nil
}

func (s *Service) status(w http.ResponseWriter, r *http.Request) {
	t, err := s.writer(r)
	if errors.Is(err, ErrNotFound) && r.Header.Get(ReadHeader) != "" {
		// A receiver learns the state, not the upload's progress.
		t, err = s.reader(r)
		var ae *apiError
		if errors.As(err, &ae) && ae.code == codeNotReady {
			err = nil
		}
		t.Parts = 0
	}
	if err != nil {
		s.fail(w, r, r.PathValue("id"), err)
		return
	}
	writeJSON(w, http.StatusOK, Status{State: t.State, Size: t.Size, Parts: t.Parts, PartSize: PartSize,
		Expires: t.Expires.Unix(), Downloads: t.Limit, Used: t.Used})
}

func (s *Service) putPart(w http.ResponseWriter, r *http.Request) {
	t, err := s.writer(r)
	if err != nil {
		s.fail(w, r, r.PathValue("id"), err)
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	switch {
	case err != nil || n < 0 || n >= PartCount(t.Size):
		err = refuse(http.StatusBadRequest, codeBadRequest, "no such part")
	case t.State != Uploading || !s.now().Before(t.Expires):
		err = ErrState
	case n != t.Parts:
		err = fmt.Errorf("%w: part %d, next is %d", ErrPart, n, t.Parts)
	case r.ContentLength != PartLen(t.Size, n):
		err = refuse(http.StatusBadRequest, codeBadRequest, "wrong part size")
	}
	if err != nil {
		s.fail(w, r, t.ID, err)
		return
	}
	// A part may take longer than the server's read timeout for requests.
	_ = http.NewResponseController(w).SetReadDeadline(s.now().Add(partTime))
	body := http.MaxBytesReader(w, r.Body, r.ContentLength)
	if err := s.cfg.Blobs.WritePart(r.Context(), t.ID, t.Upload, n, body, r.ContentLength); err != nil {
		if errors.Is(err, ErrFull) {
			// The upload cannot finish: give back all it took at once.
			if derr := s.drop(context.WithoutCancel(r.Context()), t.ID); derr != nil {
				s.log.Error("stored transfer: freeing a refused upload", "id", t.ID, "err", derr)
			}
			s.cfg.Observe(Event{Kind: EventRefused, ID: t.ID, IP: s.cfg.ClientIP(r), Owner: t.Owner, Reason: codeFull})
		} else if r.Context().Err() == nil {
			s.cfg.Observe(Event{Kind: EventBackend, ID: t.ID, Reason: "blobs"})
		}
		s.fail(w, r, t.ID, err)
		return
	}
	if err := s.cfg.Meta.AddPart(r.Context(), t.ID, n); err != nil {
		s.fail(w, r, t.ID, err)
		return
	}
	s.cfg.Observe(Event{Kind: EventPartBytes, ID: t.ID, Bytes: r.ContentLength})
	writeJSON(w, http.StatusOK, map[string]int{"parts": n + 1})
}

// maxSealedManifest bounds a sealed manifest: magic, salt, nonce, tag.
const maxSealedManifest = stored.MaxManifest + 4 + stored.SaltLen + 12 + stored.Overhead

func (s *Service) putManifest(w http.ResponseWriter, r *http.Request) {
	t, err := s.writer(r)
	if err == nil && (t.State != Uploading || t.Parts != PartCount(t.Size)) {
		err = ErrState
	}
	if err != nil {
		s.fail(w, r, r.PathValue("id"), err)
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSealedManifest))
	if err != nil || len(b) < 4+stored.SaltLen+12+stored.Overhead || string(b[:4]) != "FSM1" {
		s.fail(w, r, t.ID, refuse(http.StatusBadRequest, codeBadRequest, "malformed manifest"))
		return
	}
	ctx := r.Context()
	if err := s.cfg.Blobs.Complete(ctx, t.ID, t.Upload, t.Parts); err != nil {
		// Completed before a crash that came before SetReady: the upload
		// handle is gone, and the whole object must be there.
		if !errors.Is(err, ErrNotFound) || s.whole(ctx, t) != nil {
			s.fail(w, r, t.ID, err)
			return
		}
	}
	if err := s.cfg.Blobs.PutManifest(ctx, t.ID, b); err != nil {
		s.fail(w, r, t.ID, err)
		return
	}
	if err := s.cfg.Meta.SetReady(ctx, t.ID); err != nil {
		s.fail(w, r, t.ID, err)
		return
	}
	s.cfg.Observe(Event{Kind: EventUploaded, ID: t.ID, IP: s.cfg.ClientIP(r), Owner: t.Owner, Bytes: t.Size})
	w.WriteHeader(http.StatusNoContent)
}

// whole checks that t's data object is complete: its last byte reads.
func (s *Service) whole(ctx context.Context, t Transfer) error {
	rc, err := s.cfg.Blobs.Read(ctx, t.ID, t.Size-1, 1)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.ReadFull(rc, make([]byte, 1))
	return err
}

func (s *Service) delete(w http.ResponseWriter, r *http.Request) {
	t, err := s.writer(r)
	if err == nil {
		err = s.drop(r.Context(), t.ID)
	}
	if err != nil {
		s.fail(w, r, r.PathValue("id"), err)
		return
	}
	s.cfg.Observe(Event{Kind: EventDeleted, ID: t.ID, IP: s.cfg.ClientIP(r), Owner: t.Owner, Bytes: t.Size})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) getManifest(w http.ResponseWriter, r *http.Request) {
	t, err := s.reader(r)
	var b []byte
	if err == nil {
		b, err = s.cfg.Blobs.Manifest(r.Context(), t.ID)
	}
	if err != nil {
		s.fail(w, r, r.PathValue("id"), err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// parseRange reads a single "bytes=a-" or "bytes=a-b" range of size bytes.
func parseRange(h string, size int64) (off, n int64, ok bool) {
	if h == "" {
		return 0, size, true
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	if !found || !dash || !digits(a) || (b != "" && !digits(b)) {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end := size - 1
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
			return 0, 0, false
		}
		end = min(end, size-1)
	}
	return start, end - start + 1, true
}

func digits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (s *Service) getData(w http.ResponseWriter, r *http.Request) {
	t, err := s.reader(r)
	if err != nil {
		s.fail(w, r, r.PathValue("id"), err)
		return
	}
	off, n, ok := parseRange(r.Header.Get("Range"), t.Size)
	if !ok {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", t.Size))
		s.fail(w, r, t.ID, refuse(http.StatusRequestedRangeNotSatisfiable, codeBadRequest, "bad range"))
		return
	}
	body, err := s.cfg.Blobs.Read(r.Context(), t.ID, off, n)
	if err != nil {
		s.fail(w, r, t.ID, err)
		return
	}
	defer body.Close()
	ip := s.cfg.ClientIP(r)
	if off == 0 {
		s.cfg.Observe(Event{Kind: EventStarted, ID: t.ID, IP: ip, Owner: t.Owner, Used: t.Used, Limit: t.Limit})
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if r.Header.Get("Range") != "" {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, t.Size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	copied, err := io.Copy(w, body)
	if err != nil || copied != n {
		s.cfg.Observe(Event{Kind: EventAborted, ID: t.ID, IP: ip, Owner: t.Owner, Bytes: off + copied})
	}
}

func (s *Service) verified(w http.ResponseWriter, r *http.Request) {
	t, err := s.reader(r)
	used := 0
	if err == nil {
		used, err = s.cfg.Meta.CountDownload(r.Context(), t.ID)
	}
	if err != nil {
		s.fail(w, r, r.PathValue("id"), err)
		return
	}
	s.cfg.Observe(Event{Kind: EventVerified, ID: t.ID, IP: s.cfg.ClientIP(r), Owner: t.Owner, Bytes: t.Size, Used: used, Limit: t.Limit})
	if t.Limit > 0 && used >= t.Limit {
		s.soon()
	}
	writeJSON(w, http.StatusOK, map[string]int{"used": used, "downloads": t.Limit})
}
