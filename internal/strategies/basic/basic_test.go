package basic

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
)

func hashOf(t testing.TB, pass string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func newTestStrategy(t testing.TB, content string, o Options) (*Strategy, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := &config.Strategy{Type: "basic", HtpasswdFile: file, Roles: []string{"script"}}
	sc.Provision()
	s, err := NewWithOptions("scripts", sc, strategies.Deps{}, o)
	if err != nil {
		t.Fatal(err)
	}
	return s, file
}

func basicReq(user, pass string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	return r
}

func reasonOf(err error) strategies.Reason {
	var ie *strategies.InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

// TestCacheTiedToHash: a credential verified against one hash is not
// accepted from the cache once the file holds another for the user.
func TestCacheTiedToHash(t *testing.T) {
	s, file := newTestStrategy(t, "alice:"+hashOf(t, "old", 4)+"\n", Options{})
	ctx := context.Background()
	for range 2 {
		if _, err := s.Authenticate(ctx, basicReq("alice", "old")); err != nil {
			t.Fatalf("old password before the change: %v", err)
		}
	}
	if len(s.cache) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(s.cache))
	}
	for _, c := range s.cache {
		if strings.Contains(c.user+c.hash, "old") {
			t.Errorf("the cache holds the password")
		}
	}
	if err := os.WriteFile(file, []byte("alice:"+hashOf(t, "new", 4)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, basicReq("alice", "old")); reasonOf(err) != strategies.ReasonWrongPassword {
		t.Errorf("old password after the change: %v, want wrong_password", err)
	}
}

// TestUnknownUserRunsBcrypt: an unknown user's password is checked
// against a dummy hash of the file's cost, made before the first request.
func TestUnknownUserRunsBcrypt(t *testing.T) {
	s, _ := newTestStrategy(t, "alice:"+hashOf(t, "pw", 4)+"\nbob:"+hashOf(t, "pw", 6)+"\n", Options{})
	if _, ok := s.dummies[6]; !ok || len(s.dummies) != 1 {
		t.Fatalf("dummy hashes by cost: %v keys, want one of cost 6 made by New", len(s.dummies))
	}
	if _, err := s.Authenticate(context.Background(), basicReq("mallory", "pw")); reasonOf(err) != strategies.ReasonUnknownUser {
		t.Errorf("unknown user: %v", err)
	}
}

// TestBcryptSlots: with every slot taken, an uncached credential waits at
// most Wait and fails closed (a technical error: 503), while a cached one
// is answered.
func TestBcryptSlots(t *testing.T) {
	s, _ := newTestStrategy(t, "alice:"+hashOf(t, "pw", 4)+"\n", Options{Slots: 1, Wait: 50 * time.Millisecond})
	ctx := context.Background()
	if _, err := s.Authenticate(ctx, basicReq("alice", "pw")); err != nil {
		t.Fatal(err)
	}
	s.slots <- struct{}{} // a flood holds the only slot
	defer func() { <-s.slots }()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.Authenticate(ctx, basicReq("alice", "guess")) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil || errors.Is(err, strategies.ErrInvalidCredentials) || errors.Is(err, strategies.ErrNoCredentials) {
			t.Errorf("uncached with no slot: %v, want a technical error", err)
		}
	}
	if _, err := s.Authenticate(ctx, basicReq("alice", "pw")); err != nil {
		t.Errorf("cached credential during the flood: %v", err)
	}
}

func TestParseHtpasswd(t *testing.T) {
	h := hashOf(t, "pw", 4)
	for _, tt := range []struct{ name, in, err string }{
		{"ok", "# c\n\nalice:" + h + "\r\nbob:" + strings.Replace(h, "$2a$", "$2y$", 1) + "\n", ""},
		{"apr1", "alice:" + h + "\nbob:$apr1$x$y\n", ":2: user \"bob\": MD5"},
		{"duplicate", "alice:" + h + "\nalice:" + h + "\n", ":2: user \"alice\" appears twice"},
		{"no colon", "alice\n", ":1: not a user:hash line"},
		{"bad bcrypt", "alice:$2y$04$short\n", ":1: user \"alice\": not a valid bcrypt hash"},
		{"space in name", " alice:" + h + "\n", ":1: empty user name"},
		{"cost 17, Apache's highest", "alice:" + withCost(h, 17) + "\n", ""},
		{"cost 18", "alice:" + withCost(h, 18) + "\n", ":1: user \"alice\": bcrypt cost 18 is above 17"},
		{"cost 31", "alice:" + h + "\nbob:" + withCost(h, 31) + "\n", ":2: user \"bob\": bcrypt cost 31 is above 17"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHtpasswd("f", []byte(tt.in))
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("got %v, want %q", err, tt.err)
			}
		})
	}
}

// withCost is h claiming another bcrypt cost: it parses, and nothing here
// spends the work it asks for unless the strategy checks a password with it.
func withCost(h string, cost int) string {
	return h[:4] + fmt.Sprintf("%02d", cost) + h[6:]
}

// TestCostCapped: a line of cost 31 written into the file while serving
// fails every credential closed at once, rather than holding a bcrypt slot
// for about a day for each request that names its user (or the dummy hash of
// unknown users being made at that cost). Before the cap the first
// Authenticate below never returned.
func TestCostCapped(t *testing.T) {
	h := hashOf(t, "pw", 4)
	s, file := newTestStrategy(t, "alice:"+h+"\n", Options{})
	if err := os.WriteFile(file, []byte("alice:"+h+"\nbob:"+withCost(h, 31)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"bob", "mallory", "alice"} {
		done := make(chan error, 1)
		go func() { _, err := s.Authenticate(context.Background(), basicReq(user, "guess")); done <- err }()
		select {
		case err := <-done:
			if err == nil || errors.Is(err, strategies.ErrInvalidCredentials) || !strings.Contains(err.Error(), "cost 31") {
				t.Errorf("%s with a cost-31 line in the file: %v, want the file refused (a technical error naming the cost)", user, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s with a cost-31 line in the file: still checking after 5s", user)
		}
	}
}

// TestWrongAfterRight: a right password cached does not let a wrong one
// through for the same user (the cache key holds the password too).
func TestWrongAfterRight(t *testing.T) {
	s, _ := newTestStrategy(t, "alice:"+hashOf(t, "right", 4)+"\n", Options{})
	ctx := context.Background()
	if _, err := s.Authenticate(ctx, basicReq("alice", "right")); err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{"wrong", "righ", "right ", "Right", ""} {
		if _, err := s.Authenticate(ctx, basicReq("alice", wrong)); reasonOf(err) != strategies.ReasonWrongPassword {
			t.Errorf("password %q after the right one: %v, want wrong_password", wrong, err)
		}
	}
}

func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("alice:$2y$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234\n"))
	f.Add([]byte("bob:$apr1$x$y\n#c\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := parseHtpasswd("f", data)
		if err == nil && u == nil {
			t.Fatal("nil users without an error")
		}
	})
}

func FuzzCredentials(f *testing.F) {
	f.Add("Basic YWxpY2U6cHc=")
	f.Add("basic")
	f.Add("Basic !!")
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{h}
		user, _, err := credentials(r)
		if err == nil && user == "" {
			t.Fatal("an empty user accepted")
		}
		if err != nil && !errors.Is(err, strategies.ErrNoCredentials) && !errors.Is(err, strategies.ErrInvalidCredentials) {
			t.Fatalf("technical error for a header: %v", err)
		}
	})
}

// BenchmarkVerify compares a cached credential with one bcrypt checks
// (cost 10): the ratio is what the cache saves per request.
func BenchmarkVerify(b *testing.B) {
	s, _ := newTestStrategy(b, "alice:"+hashOf(b, "pw", 10)+"\n", Options{Slots: 64})
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		r := basicReq("alice", "pw")
		if _, err := s.Authenticate(ctx, r); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Authenticate(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		r := basicReq("alice", "pw")
		b.ReportAllocs()
		for b.Loop() {
			clear(s.cache)
			if _, err := s.Authenticate(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
