package idp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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

// TestHardenUsesTheOperatorsProxy: with HTTP_PROXY set, calls to the
// provider go through that egress proxy (many networks reach an outside
// provider only that way); the client still does not follow the proxy's
// redirects. net/http reads the environment once per process, so the call
// is made by a child process started with the variable set.
func TestHardenUsesTheOperatorsProxy(t *testing.T) {
	if os.Getenv("IDP_PROXY_CHILD") == "1" {
		resp, err := NewHTTPClient().Get("http://idp.invalid.test/.well-known/openid-configuration")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		resp.Body.Close()
		fmt.Println("status:", resp.StatusCode)
		os.Exit(0)
	}
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		if r.URL.Host != "idp.invalid.test" {
			t.Errorf("proxy asked for %q, want the provider's host", r.URL.Host)
		}
		w.Header().Set("Location", "http://elsewhere.test/")
		w.WriteHeader(http.StatusFound)
	}))
	defer proxy.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHardenUsesTheOperatorsProxy$")
	cmd.Env = append(os.Environ(), "IDP_PROXY_CHILD=1", "HTTP_PROXY="+proxy.URL, "NO_PROXY=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "status: 302") || proxied.Load() != 1 {
		t.Fatalf("child: %v, output %q, proxy saw %d requests; want status 302 (unfollowed) through the proxy, once", err, out, proxied.Load())
	}
	if NewHTTPClient().Timeout != Timeout {
		t.Fatalf("Timeout = %v; want %v", NewHTTPClient().Timeout, Timeout)
	}
}
