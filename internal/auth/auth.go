// Package auth is ferry's optional sign-in: senders (never receivers) may
// be required to sign in with OpenID Connect, or to present a static token
// (for scripts); the admin page takes an admin token or an admin's
// sign-in. Sessions are HMAC-signed cookies, so several instances sharing
// the cookie secret accept each other's sessions without shared state.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors.
var (
	ErrConfig = errors.New("auth: invalid configuration")
	// ErrSignIn wraps every sign-in failure, together with one of the
	// reasons below; the edge (the HTTP server) words them for people.
	ErrSignIn     = errors.New("auth: sign-in failed")
	ErrStale      = errors.New("auth: sign-in state missing or expired")
	ErrProvider   = errors.New("auth: the identity provider reported an error")
	ErrForged     = errors.New("auth: sign-in response does not match the request")
	ErrExchange   = errors.New("auth: code exchange or ID token check failed")
	ErrNoEmail    = errors.New("auth: no email address shared")
	ErrUnverified = errors.New("auth: email address not verified")
	ErrNotAllowed = errors.New("auth: account not allowed to send")
	ErrNotSigned  = errors.New("auth: not signed in")
)

const (
	sessionCookie = "ferry_session"
	flowCookie    = "ferry_oidc"
	adminCookie   = "ferry_admin"
	sessionTTL    = 12 * time.Hour
	flowTTL       = 10 * time.Minute
)

// Config configures sign-in. Everything is optional: with no issuer and no
// tokens, anyone may send.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is this server's /auth/callback as the provider knows it.
	RedirectURL string
	// Allowed restricts senders to these emails or "@domain"s (empty: any
	// account the provider signs in).
	Allowed []string
	// AdminEmails may open the admin page after signing in.
	AdminEmails []string
	// AdminToken opens the admin page.
	AdminToken string
	// SenderTokens let scripts send with "Authorization: Bearer <token>".
	SenderTokens []string
	// CookieSecret signs cookies; share it between instances.
	CookieSecret []byte
	// Secure marks cookies Secure (the site is served over HTTPS).
	Secure     bool
	Now        func() time.Time
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Auth implements sign-in.
type Auth struct {
	cfg      Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    *oauth2.Config
	log      *slog.Logger
}

// New sets up sign-in; with an issuer it fetches the provider's discovery
// document, so the provider must be reachable at start-up.
func New(ctx context.Context, cfg Config) (*Auth, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.CookieSecret) < 16 {
		cfg.CookieSecret = make([]byte, 32)
		_, _ = rand.Read(cfg.CookieSecret)
	}
	a := &Auth{cfg: cfg, log: cfg.Logger}
	if cfg.Issuer == "" {
		return a, nil
	}
	if cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, fmt.Errorf("%w: OIDC needs a client id and a redirect URL", ErrConfig)
	}
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: OIDC provider %s: %v", ErrConfig, cfg.Issuer, err)
	}
	a.provider = p
	a.verifier = p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: cfg.Now})
	a.oauth = &oauth2.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
	}
	return a, nil
}

// SignInRequired reports whether senders must sign in (or hold a token).
func (a *Auth) SignInRequired() bool { return a.provider != nil || len(a.cfg.SenderTokens) > 0 }

// OIDC reports whether browser sign-in is available.
func (a *Auth) OIDC() bool { return a.provider != nil }

// Sender returns who may send with this request: a signed-in user, or a
// token holder ("token"). ok is false when sign-in is required and missing.
func (a *Auth) Sender(r *http.Request) (user string, ok bool) {
	if tok, found := Bearer(r); found {
		match := 0
		for _, t := range a.cfg.SenderTokens {
			match |= tokenEqual(tok, t) // no early exit: every token costs the same
		}
		if match == 1 {
			return "token", true
		}
	}
	if s, err := a.session(r); err == nil {
		return s.Email, true
	}
	return "", !a.SignInRequired()
}

// Bearer returns the token of an "Authorization: Bearer" header.
func Bearer(r *http.Request) (token string, ok bool) {
	return strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// tokenEqual compares in time independent of where the strings differ
// and of their lengths (hashes have one length): 1 if equal, else 0.
func tokenEqual(got, want string) int {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:])
}

// Admin reports whether the request may see the admin page: the admin
// token as a bearer token, or an admin session (see AdminSession).
func (a *Auth) Admin(r *http.Request) bool {
	if tok, ok := Bearer(r); ok && a.AdminTokenOK(tok) {
		return true
	}
	return a.AdminSession(r)
}

// AdminSession reports whether the request carries an admin's signed
// cookie: from an admin token login or an admin's sign-in. Nothing in it
// is a guess, so callers need not throttle it.
func (a *Auth) AdminSession(r *http.Request) bool {
	if a.cfg.AdminToken != "" {
		if c, err := r.Cookie(adminCookie); err == nil {
			var s session
			if a.open(c.Value, &s) == nil && s.Admin && a.cfg.Now().Unix() < s.Exp {
				return true
			}
		}
	}
	if s, err := a.session(r); err == nil {
		for _, e := range a.cfg.AdminEmails {
			if strings.EqualFold(e, s.Email) {
				return true
			}
		}
	}
	return false
}

// AdminTokenOK reports whether tok is the admin token. Callers throttle
// wrong guesses.
func (a *Auth) AdminTokenOK(tok string) bool {
	return a.cfg.AdminToken != "" && tokenEqual(tok, a.cfg.AdminToken) == 1
}

// AdminLogin checks an admin token and sets the admin cookie.
func (a *Auth) AdminLogin(w http.ResponseWriter, token string) bool {
	if !a.AdminTokenOK(token) {
		return false
	}
	exp := a.cfg.Now().Add(sessionTTL)
	a.setCookie(w, adminCookie, a.seal(session{Admin: true, Exp: exp.Unix()}), exp)
	return true
}

// session is the signed cookie payload.
type session struct {
	Sub   string `json:"sub,omitempty"`
	Email string `json:"email,omitempty"`
	Admin bool   `json:"adm,omitempty"`
	Exp   int64  `json:"exp"`
}

// flow is the state of one sign-in round trip.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Exp      int64  `json:"exp"`
}

func (a *Auth) seal(v any) string {
	js, _ := json.Marshal(v)
	m := hmac.New(sha256.New, a.cfg.CookieSecret)
	m.Write(js)
	return base64.RawURLEncoding.EncodeToString(js) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *Auth) open(value string, v any) error {
	p, sig, ok := strings.Cut(value, ".")
	if !ok {
		return ErrNotSigned
	}
	js, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return ErrNotSigned
	}
	m := hmac.New(sha256.New, a.cfg.CookieSecret)
	m.Write(js)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return ErrNotSigned
	}
	return json.Unmarshal(js, v)
}

func (a *Auth) session(r *http.Request) (session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, ErrNotSigned
	}
	var s session
	if err := a.open(c.Value, &s); err != nil || s.Email == "" || a.cfg.Now().Unix() >= s.Exp {
		return session{}, ErrNotSigned
	}
	return s, nil
}

// setCookie sets a cookie that lives until exp. It uses Max-Age, not an
// absolute Expires, so a client whose clock is off keeps it for the right
// time; the signed payload carries the expiry the server checks.
func (a *Auth) setCookie(w http.ResponseWriter, name, value string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(exp.Sub(a.cfg.Now()).Seconds()), HttpOnly: true,
		Secure: a.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}

func (a *Auth) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.cfg.Secure, SameSite: http.SameSiteLaxMode})
}

func random() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// maxNext bounds the return path kept in the flow cookie.
const maxNext = 1024

// safeNext keeps redirects on this site: only a path on this host is kept,
// anything else becomes "/". Browsers read a backslash as a slash and drop
// tabs and newlines inside URLs, so `/\evil.example` and "/\t/evil.example"
// would leave the site like "//evil.example"; such paths are refused, as is
// any control character, space or backslash, also once percent-decoded
// (a proxy or a second decoding must not turn the path into one of these).
func safeNext(next string) string {
	if len(next) > maxNext || !sitePath(next) {
		return "/"
	}
	if dec, err := url.PathUnescape(next); err != nil || !sitePath(dec) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.IsAbs() || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return next
}

// sitePath reports whether p is a path on this host with nothing a browser
// could read as the start of another host.
func sitePath(p string) bool {
	if p == "" || p[0] != '/' || (len(p) > 1 && (p[1] == '/' || p[1] == '\\')) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// Login starts the OIDC code flow (with PKCE and a nonce).
func (a *Auth) Login(w http.ResponseWriter, r *http.Request) {
	if a.provider == nil {
		http.NotFound(w, r)
		return
	}
	f := flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(r.URL.Query().Get("next")), Exp: a.cfg.Now().Add(flowTTL).Unix()}
	a.setCookie(w, flowCookie, a.seal(f), a.cfg.Now().Add(flowTTL))
	http.Redirect(w, r, a.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

// Callback finishes the flow and sets the session cookie.
func (a *Auth) Callback(w http.ResponseWriter, r *http.Request) error {
	if a.provider == nil {
		return ErrNotSigned
	}
	c, err := r.Cookie(flowCookie)
	if err != nil {
		return fmt.Errorf("%w: %w: no flow cookie", ErrSignIn, ErrStale)
	}
	var f flow
	if err := a.open(c.Value, &f); err != nil || a.cfg.Now().Unix() >= f.Exp {
		return fmt.Errorf("%w: %w: flow cookie expired or invalid", ErrSignIn, ErrStale)
	}
	a.clearCookie(w, flowCookie)
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return fmt.Errorf("%w: %w: %q", ErrSignIn, ErrProvider, e)
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		return fmt.Errorf("%w: %w: state", ErrSignIn, ErrForged)
	}
	ctx := r.Context()
	if a.cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, a.cfg.HTTPClient)
	}
	tok, err := a.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		a.log.Warn("oidc code exchange failed", "err", err)
		return fmt.Errorf("%w: %w: code exchange", ErrSignIn, ErrExchange)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		a.log.Warn("oidc id token rejected", "err", err)
		return fmt.Errorf("%w: %w: ID token", ErrSignIn, ErrExchange)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return fmt.Errorf("%w: %w: nonce", ErrSignIn, ErrForged)
	}
	var claims struct {
		Email    string `json:"email"`
		Verified *bool  `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Email == "" {
		return fmt.Errorf("%w: %w", ErrSignIn, ErrNoEmail)
	}
	if claims.Verified != nil && !*claims.Verified {
		return fmt.Errorf("%w: %w", ErrSignIn, ErrUnverified)
	}
	if !a.allowed(claims.Email) {
		return fmt.Errorf("%w: %w: %s", ErrSignIn, ErrNotAllowed, claims.Email)
	}
	exp := a.cfg.Now().Add(sessionTTL)
	a.setCookie(w, sessionCookie, a.seal(session{Sub: idt.Subject, Email: claims.Email, Exp: exp.Unix()}), exp)
	http.Redirect(w, r, f.Next, http.StatusFound)
	return nil
}

func (a *Auth) allowed(email string) bool {
	if len(a.cfg.Allowed) == 0 {
		return true
	}
	email = strings.ToLower(email)
	for _, al := range a.cfg.Allowed {
		al = strings.ToLower(al)
		if al == email || (strings.HasPrefix(al, "@") && strings.HasSuffix(email, al)) {
			return true
		}
	}
	return false
}

// Logout clears the session.
func (a *Auth) Logout(w http.ResponseWriter, r *http.Request) {
	a.clearCookie(w, sessionCookie)
	a.clearCookie(w, adminCookie)
	http.Redirect(w, r, "/", http.StatusFound)
}

// Me describes the caller for the web page.
type Me struct {
	SignInRequired bool   `json:"signInRequired"`
	SignInURL      string `json:"signInUrl,omitempty"`
	User           string `json:"user,omitempty"`
	MaySend        bool   `json:"maySend"`
}

// WhoAmI returns Me for r.
func (a *Auth) WhoAmI(r *http.Request) Me {
	user, ok := a.Sender(r)
	m := Me{SignInRequired: a.SignInRequired(), User: user, MaySend: ok}
	if a.provider != nil {
		m.SignInURL = "/auth/login"
	}
	return m
}
