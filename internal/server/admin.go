package server

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/ferrydev/ferry/internal/audit"
	"github.com/ferrydev/ferry/internal/auth"
	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/units"
	"github.com/ferrydev/ferry/signaling"
)

//go:embed admin
var adminFS embed.FS

var adminPage = template.Must(template.New("admin.html").Funcs(template.FuncMap{
	"bytes": func(n int64) string { return units.Bytes(n) },
}).ParseFS(adminFS, "admin/admin.html"))

// maxAdminForm bounds the login form: a token and little else.
const maxAdminForm = 8 << 10

// adminCSP allows nothing but our own stylesheet and same-origin forms.
const adminCSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

type adminView struct {
	Authorized, TokenLogin, OIDC bool
	Error                        string
	Version, Started, Now        string
	Stats                        signaling.StoreStats
	Connections, Allocations     int64
	Relayed, Dropped             string
	AuditErrors                  int
	Tickets                      []string
	Events                       []audit.Event
	// Stored transfers; StoreOn is false with --store=false.
	StoreOn bool
	Stored  []storedRow
	Notice  string
}

// storedRow is one stored transfer on the admin page.
type storedRow struct {
	ID, Size, Created, Expires, Downloads, Owner, State string
}

func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin", s.adminHandler)
	mux.HandleFunc("GET /admin/admin.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, adminFS, "admin/admin.css")
	})
	mux.HandleFunc("POST /admin/login", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxAdminForm)
		if err := r.ParseForm(); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if !sameOrigin(r) {
			s.renderAdmin(w, r, adminView{Error: "That token is not right."}, http.StatusUnauthorized)
			return
		}
		ip := s.resolveIP.ClientIP(r)
		if wait := s.tokenGuard.Wait(ip); wait > 0 {
			s.tooManyTokens(w, r, ip, wait)
			return
		}
		if !s.auth.AdminLogin(w, r.PostFormValue("token")) {
			s.wrongToken(ip)
			s.renderAdmin(w, r, adminView{Error: "That token is not right."}, http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /admin/stored/{id}/delete", s.adminDeleteStored)
	mux.HandleFunc("POST /admin/logout", func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		s.auth.Logout(w, r)
	})
}

// sameOrigin refuses cross-site form posts (the cookies are SameSite=Lax,
// which still lets top-level POSTs through in some browsers).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || originHost(o) == r.Host
}

func originHost(origin string) string {
	for _, p := range []string{"https://", "http://"} {
		if len(origin) > len(p) && origin[:len(p)] == p {
			return origin[len(p):]
		}
	}
	return ""
}

// Wrong admin tokens (and sender tokens, see mayCreate) are throttled per
// client address (a person mistyping has ten tries, then one every six
// seconds) and in all (a guesser spreading over many addresses gets one
// try a second), so with the minimum token length guessing is hopeless.
// A throttled client's token is not even checked: a right guess must not
// show.
const (
	tokenFailEvery       = 6 * time.Second
	tokenFailBurst       = 10
	tokenFailGlobalEvery = time.Second
	tokenFailGlobalBurst = 100
)

// adminGate reports whether r may act as admin: an admin session, or the
// admin token as a bearer token (throttled). When it answered the request
// itself (429), ok is false and answered true.
func (s *Server) adminGate(w http.ResponseWriter, r *http.Request) (ok, answered bool) {
	if s.auth.AdminSession(r) {
		return true, false
	}
	tok, presented := auth.Bearer(r)
	if !presented || s.cfg.AdminToken == "" {
		return false, false
	}
	ip := s.resolveIP.ClientIP(r)
	if wait := s.tokenGuard.Wait(ip); wait > 0 {
		s.tooManyTokens(w, r, ip, wait)
		return false, true
	}
	if s.auth.AdminTokenOK(tok) {
		return true, false
	}
	s.wrongToken(ip)
	return false, false
}

func (s *Server) wrongToken(ip netip.Addr) {
	if s.tokenGuard.Fail(ip) {
		s.log.Warn("too many wrong tokens: refusing more for a while", "ip", ip)
	}
}

// tooManyTokens answers 429 with when to try again.
func (s *Server) tooManyTokens(w http.ResponseWriter, r *http.Request, ip netip.Addr, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	s.log.Debug("admin token attempt throttled", "ip", ip, "retry_after_s", secs)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := fmt.Sprintf("Too many wrong tokens. Try again in %d seconds.", secs)
	if r.URL.Path == "/metrics" {
		http.Error(w, msg, http.StatusTooManyRequests)
		return
	}
	s.renderAdmin(w, r, adminView{Error: msg}, http.StatusTooManyRequests)
}

func (s *Server) adminHandler(w http.ResponseWriter, r *http.Request) {
	if ok, answered := s.adminGate(w, r); !ok {
		if !answered {
			s.renderAdmin(w, r, adminView{}, http.StatusUnauthorized)
		}
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	v := adminView{Authorized: true, Version: s.version, Started: s.started.UTC().Format("2006-01-02 15:04 MST"),
		Now: s.now().UTC().Format("15:04:05 MST"), Connections: int64(s.sig.Conns()), AuditErrors: s.audit.WriteErrors(),
		Events: s.audit.Recent(50), Relayed: "0 B", Dropped: "0 B"}
	v.Stats, _ = s.store.Stats(ctx)
	v.Tickets, _ = s.store.LiveTickets(ctx, 100)
	if s.depot != nil {
		v.StoreOn = true
		list, _ := s.depot.Transfers(ctx, 200)
		for _, t := range list {
			dl := fmt.Sprintf("%d / %d", t.Used, t.Limit)
			if t.Limit == 0 {
				dl = fmt.Sprintf("%d / unlimited", t.Used)
			}
			v.Stored = append(v.Stored, storedRow{ID: t.ID, Size: units.Bytes(t.Size), Created: t.Created.UTC().Format("2006-01-02 15:04"),
				Expires: t.Expires.UTC().Format("2006-01-02 15:04"), Downloads: dl, Owner: t.Owner, State: string(t.State)})
		}
	}
	switch r.URL.Query().Get("deleted") {
	case "1":
		v.Notice = "The stored transfer was deleted."
	case "0":
		v.Notice = "That stored transfer was already gone."
	}
	if s.turn != nil {
		v.Allocations = s.turn.Allocations()
		v.Relayed = units.Bytes(s.turn.RelayedBytes())
		v.Dropped = units.Bytes(s.turn.DroppedBytes())
	}
	s.renderAdmin(w, r, v, http.StatusOK)
}

func (s *Server) renderAdmin(w http.ResponseWriter, _ *http.Request, v adminView, code int) {
	v.TokenLogin = s.cfg.AdminToken != ""
	v.OIDC = s.auth.OIDC() && len(s.cfg.AdminEmails) > 0
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", adminCSP)
	h.Set("Cache-Control", "no-store")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on form posts, and sameOrigin could not tell.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if err := adminPage.Execute(w, v); err != nil {
		s.log.Error("admin page", "err", err)
	}
}

// adminDeleteStored deletes a stored transfer from the admin page.
func (s *Server) adminDeleteStored(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	if ok, answered := s.adminGate(w, r); !ok {
		if !answered {
			s.renderAdmin(w, r, adminView{}, http.StatusUnauthorized)
		}
		return
	}
	if s.depot == nil {
		http.NotFound(w, r)
		return
	}
	err := s.depot.Remove(r.Context(), r.PathValue("id"), s.auth.WhoAmI(r).User)
	switch {
	case errors.Is(err, depot.ErrNotFound):
		http.Redirect(w, r, "/admin?deleted=0", http.StatusSeeOther)
	case err != nil:
		s.log.Error("admin: deleting a stored transfer", "id", r.PathValue("id"), "err", err)
		http.Error(w, "could not delete it; see the server's log", http.StatusInternalServerError)
	default:
		http.Redirect(w, r, "/admin?deleted=1", http.StatusSeeOther)
	}
}
