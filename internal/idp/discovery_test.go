package idp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/testutil/oidctest"
)

func TestDiscover(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	m, err := Discover(context.Background(), NewHTTPClient(), p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	want := Metadata{Issuer: p.Issuer, AuthURL: p.AuthURL, TokenURL: p.TokenURL, UserinfoURL: p.UserinfoURL,
		JWKSURL: p.JWKSURL, IntrospectionURL: p.IntrospectionURL, EndSessionURL: p.EndSessionURL}
	got := *m
	got.IDTokenAlgorithms = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("metadata = %+v\nwant       %+v", got, want)
	}
	if !slices.Contains(m.IDTokenAlgorithms, "RS256") || slices.ContainsFunc(m.IDTokenAlgorithms, func(a string) bool { return !Asymmetric(a) }) {
		t.Fatalf("IDTokenAlgorithms = %v; want RS256 and public-key ones only", m.IDTokenAlgorithms)
	}

	t.Run("issuer mismatch", func(t *testing.T) {
		p := oidctest.Start(t, oidctest.Options{Host: "localhost"})
		// 127.0.0.1: the provider names localhost.
		if _, err := Discover(context.Background(), NewHTTPClient(), "http://"+p.Addr); !errors.Is(err, ErrIssuerMismatch) {
			t.Fatalf("Discover = %v; want ErrIssuerMismatch", err)
		}
	})
}

func TestDiscoveryDocument(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    func(issuer string) string
		wantErr string
	}{
		{"not found", 404, func(string) string { return "" }, "404"},
		{"not json", 200, func(string) string { return "<html>" }, "decode"},
		{"other issuer", 200, func(string) string { return `{"issuer":"https://evil.example"}` }, "differs"},
		{"jwks_uri not http", 200, func(iss string) string {
			return `{"issuer":"` + iss + `","jwks_uri":"file:///etc/passwd"}`
		}, "jwks_uri"},
		{"introspection_endpoint with credentials", 200, func(iss string) string {
			return `{"issuer":"` + iss + `","introspection_endpoint":"https://user:pw@as.example/i"}`
		}, "introspection_endpoint"},
		{"end_session_endpoint relative", 200, func(iss string) string {
			return `{"issuer":"` + iss + `","end_session_endpoint":"/logout"}`
		}, "end_session_endpoint"},
		{"oversize", 200, func(iss string) string {
			return `{"issuer":"` + iss + `","x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
		}, "larger"},
		{"redirect is not followed", 302, func(string) string { return "" }, "302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 302 {
					http.Redirect(w, r, "/elsewhere", http.StatusFound)
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body(srv.URL)))
			}))
			defer srv.Close()
			_, err := Discover(context.Background(), NewHTTPClient(), srv.URL)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Discover = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
