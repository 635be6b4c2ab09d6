package idp

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHardenRefusesRedirects(t *testing.T) {
	var reached atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	defer target.Close()
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirector.Close()
	// A caller's client that would follow, and ours.
	for _, c := range []*http.Client{Harden(&http.Client{}), NewHTTPClient()} {
		resp, err := c.Post(redirector.URL, "application/x-www-form-urlencoded", strings.NewReader("token=t"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect || reached.Load() != 0 {
			t.Fatalf("status %d, redirect target reached %d times; want the 307 itself, never followed", resp.StatusCode, reached.Load())
		}
	}
}

func TestHardenCapsBodies(t *testing.T) {
	body := strings.Repeat("a", MaxBodyBytes)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
		if r.URL.Path == "/over" {
			_, _ = io.WriteString(w, "a")
		}
	}))
	defer srv.Close()
	c := Harden(Harden(nil)) // hardening twice caps once
	read := func(path string) (int, error) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return len(b), err
	}
	if n, err := read("/exact"); err != nil || n != MaxBodyBytes {
		t.Fatalf("a body of exactly MaxBodyBytes: read %d, %v", n, err)
	}
	if _, err := read("/over"); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("one byte more: %v; want ErrBodyTooLarge", err)
	}
}

// TestHardenIgnoresEnvironmentProxy: a proxy named in the environment does
// not see the gateway's calls to its provider (its client secret, users'
// tokens): the call goes where the config says, or fails.
func TestHardenIgnoresEnvironmentProxy(t *testing.T) {
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("NO_PROXY", "")
	// A name that resolves nowhere (.test is reserved): through the proxy
	// it would answer.
	resp, err := NewHTTPClient().Get("http://idp.invalid.test/.well-known/openid-configuration")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("status %d; want no answer", resp.StatusCode)
	}
	if proxied.Load() != 0 {
		t.Fatalf("the environment's proxy saw %d requests; want none", proxied.Load())
	}
	if NewHTTPClient().Timeout != Timeout {
		t.Fatalf("Timeout = %v; want %v", NewHTTPClient().Timeout, Timeout)
	}
}
