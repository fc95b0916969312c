package auth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/auth"
	"github.com/ferrydev/ferry/internal/oidcstub"
)

// signInSite runs the sign-in routes of a site in front of the OIDC stub.
func signInSite(t *testing.T, email string) (*httptest.Server, *auth.Auth) {
	t.Helper()
	stub, err := oidcstub.Start("ferry-test", "client-secret", email)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stub.Close)
	mux := http.NewServeMux()
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := auth.New(ctx, auth.Config{
		Issuer: stub.URL, ClientID: "ferry-test", ClientSecret: "client-secret",
		RedirectURL: site.URL + "/auth/callback", Allowed: []string{"@example.org"},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("GET /auth/login", a.Login)
	mux.HandleFunc("GET /auth/callback", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Callback(w, r); err != nil {
			http.Error(w, "sign-in failed", http.StatusForbidden)
		}
	})
	mux.HandleFunc("GET /api/v1/me", func(w http.ResponseWriter, r *http.Request) {
		user, _ := a.Sender(r)
		_, _ = io.WriteString(w, user)
	})
	return site, a
}

// signIn runs the redirect dance for rawQuery and returns where the
// callback finally sends the browser.
func signIn(t *testing.T, site *httptest.Server, rawQuery string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if via[len(via)-1].URL.Path == "/auth/callback" {
				return http.ErrUseLastResponse
			}
			if len(via) > 5 {
				return errors.New("too many redirects")
			}
			return nil
		}}
	resp, err := client.Get(site.URL + "/auth/login?" + rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Request.URL.Path != "/auth/callback" {
		t.Fatalf("sign-in ended with %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return client, resp.Header.Get("Location")
}

// TestSignInNext signs in through the stub provider with hostile and
// ordinary return paths: the last redirect stays on the site.
func TestSignInNext(t *testing.T) {
	site, _ := signInSite(t, "alice@example.org")
	tests := []struct{ query, want string }{
		{"next=/admin", "/admin"},
		{"", "/"},
		{"next=/%5Cevil.example/", "/"},
		{"next=%5C%5Cevil.example/", "/"},
		{"next=//evil.example/", "/"},
		{"next=/%09/evil.example/", "/"},
		{"next=/%255Cevil.example/", "/"},
		{"next=https://evil.example/", "/"},
		{"next=https:evil.example", "/"},
		{"next=javascript:alert(1)", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			client, loc := signIn(t, site, tc.query)
			if loc != tc.want {
				t.Fatalf("after sign-in with %q: Location %q, want %q", tc.query, loc, tc.want)
			}
			// And the sign-in itself worked.
			resp, err := client.Get(site.URL + "/api/v1/me")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "alice@example.org" {
				t.Fatalf("signed in as %q", b)
			}
		})
	}
}

// TestSignInRefused: an account outside the allowed domain gets no session.
func TestSignInRefused(t *testing.T) {
	site, _ := signInSite(t, "eve@elsewhere.test")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := client.Get(site.URL + "/auth/login?next=/admin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("refused sign-in: %d", resp.StatusCode)
	}
	u, _ := url.Parse(site.URL)
	for _, c := range jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "ferry_session") {
			t.Fatalf("refused sign-in left a session cookie")
		}
	}
}
