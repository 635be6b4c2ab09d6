package introspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// answerServer is an introspection endpoint that answers whatever the test
// says: a broken or hostile authorization server, which the real one in
// oidc_test.go cannot be made into.
type answerServer struct {
	*httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	status int
	body   string
}

func newAnswerServer(t *testing.T, status int, body string) *answerServer {
	t.Helper()
	s := &answerServer{status: status, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func testOptions(url string) Options {
	return Options{URL: url, ClientID: "gw", ClientSecret: "secret", CacheTTL: time.Minute,
		Issuer: "https://as.example", Audience: "gateway"}
}

func TestAnswerChecks(t *testing.T) {
	future := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Minute).Unix()
	good := func(extra string) string {
		return fmt.Sprintf(`{"active":true,"sub":"u1","iss":"https://as.example","aud":"gateway","exp":%d%s}`, future, extra)
	}
	tests := []struct {
		name   string
		body   string
		want   error // nil: accepted; errTechnical: neither denial
		reason strategies.Reason
	}{
		{"accepted", good(`,"scope":"a b","roles":["admin"]`), nil, ""},
		{"aud array", fmt.Sprintf(`{"active":true,"iss":"https://as.example","aud":["x","gateway"],"exp":%d}`, future), nil, ""},
		{"token_type bearer", good(`,"token_type":"Bearer"`), nil, ""},
		{"token_type access_token", good(`,"token_type":"access_token"`), nil, ""},
		{"fractional exp", fmt.Sprintf(`{"active":true,"iss":"https://as.example","aud":"gateway","exp":%d.5}`, future), nil, ""},
		{"inactive", `{"active":false}`, ErrInactive, "inactive"},
		{"inactive with claims", fmt.Sprintf(`{"active":false,"sub":"u1","exp":%d}`, future), ErrInactive, "inactive"},
		{"no exp", `{"active":true,"iss":"https://as.example","aud":"gateway"}`, ErrInvalid, "missing_claim"},
		{"expired", fmt.Sprintf(`{"active":true,"iss":"https://as.example","aud":"gateway","exp":%d}`, past), ErrInvalid, "expired"},
		{"not yet valid", good(fmt.Sprintf(`,"nbf":%d`, future)), ErrInvalid, "not_yet_valid"},
		{"refresh token", good(`,"token_type":"refresh_token"`), ErrInvalid, "wrong_token_type"},
		{"id token", good(`,"token_type":"urn:ietf:params:oauth:token-type:id_token"`), ErrInvalid, "wrong_token_type"},
		{"dpop token", good(`,"token_type":"DPoP"`), ErrInvalid, "wrong_token_type"},
		{"sender constrained", good(`,"cnf":{"x5t#S256":"abc"}`), ErrInvalid, "sender_constrained"},
		{"other issuer", fmt.Sprintf(`{"active":true,"iss":"https://evil.example","aud":"gateway","exp":%d}`, future), ErrInvalid, "wrong_issuer"},
		{"no issuer", fmt.Sprintf(`{"active":true,"aud":"gateway","exp":%d}`, future), ErrInvalid, "wrong_issuer"},
		{"other audience", fmt.Sprintf(`{"active":true,"iss":"https://as.example","aud":["gatewayx"],"exp":%d}`, future), ErrInvalid, "wrong_audience"},
		{"no audience", fmt.Sprintf(`{"active":true,"iss":"https://as.example","exp":%d}`, future), ErrInvalid, "wrong_audience"},
		{"active as string", `{"active":"true"}`, errTechnical, ""},
		{"no active", `{"sub":"u1"}`, errTechnical, ""},
		{"exp as string", `{"active":true,"exp":"tomorrow"}`, errTechnical, ""},
		{"exp huge", `{"active":true,"exp":1e300}`, errTechnical, ""},
		{"exp negative", `{"active":true,"exp":-5}`, errTechnical, ""},
		{"sub as number", good(`,"sub":5`), errTechnical, ""},
		{"aud of numbers", fmt.Sprintf(`{"active":true,"aud":[1],"exp":%d}`, future), errTechnical, ""},
		{"array", `[true]`, errTechnical, ""},
		{"null", `null`, errTechnical, ""},
		{"not json", `active=true`, errTechnical, ""},
		{"truncated", `{"active":tr`, errTechnical, ""},

		// From the issuer's own endpoint, iss may be left out (RFC 7662);
		// a present one must still be the issuer.
		{"issuer's endpoint: no issuer", fmt.Sprintf(`{"active":true,"aud":"gateway","exp":%d}`, future), nil, ""},
		{"issuer's endpoint: the issuer", good(""), nil, ""},
		{"issuer's endpoint: other issuer", fmt.Sprintf(`{"active":true,"iss":"https://evil.example","aud":"gateway","exp":%d}`, future), ErrInvalid, "wrong_issuer"},
		{"issuer's endpoint: empty issuer", fmt.Sprintf(`{"active":true,"iss":"","aud":"gateway","exp":%d}`, future), ErrInvalid, "wrong_issuer"},
		{"issuer's endpoint: null issuer", fmt.Sprintf(`{"active":true,"iss":null,"aud":"gateway","exp":%d}`, future), errTechnical, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newAnswerServer(t, 200, tt.body)
			opts := testOptions(srv.URL)
			opts.IssuerEndpoint = strings.HasPrefix(tt.name, "issuer's endpoint: ")
			c, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Introspect(context.Background(), "tok")
			switch {
			case tt.want == nil:
				if err != nil || !r.Active {
					t.Fatalf("Introspect = %+v, %v; want accepted", r, err)
				}
			case tt.want == errTechnical:
				technical(t, err)
			default:
				var d *DeniedError
				if !errors.Is(err, tt.want) || !errors.As(err, &d) || d.Reason != tt.reason {
					t.Fatalf("err = %v; want %v (%s)", err, tt.want, tt.reason)
				}
			}
		})
	}
}

var errTechnical = errors.New("technical")

func TestResultFields(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	srv := newAnswerServer(t, 200, fmt.Sprintf(`{"active":true,"sub":"u1","client_id":"app","scope":"read write",
		"username":"alice","token_type":"Bearer","iss":"https://as.example","aud":["gateway","x"],"exp":%d,
		"roles":["admin"],"email":"a@example.com"}`, exp.Unix()))
	c, _ := New(testOptions(srv.URL))
	r, err := c.Introspect(context.Background(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%v %v %v %v %v %v %v %v", "u1", "app", "read write", "alice", "Bearer", "https://as.example", []string{"gateway", "x"}, exp)
	got := fmt.Sprintf("%v %v %v %v %v %v %v %v", r.Subject, r.ClientID, r.Scope, r.Username, r.TokenType, r.Issuer, r.Audience, r.ExpiresAt)
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if len(r.Extra) != 2 || r.Extra["email"] != "a@example.com" {
		t.Fatalf("Extra = %v", r.Extra)
	}
}

func TestRequestOnTheWire(t *testing.T) {
	type seen struct {
		method, ctype, token, hint, id, secret string
		basic                                  bool
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		id, secret, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		got <- seen{r.Method, r.Header.Get("Content-Type"), r.PostForm.Get("token"), r.PostForm.Get("token_type_hint"), id, secret, ok}
		_, _ = io.WriteString(w, `{"active":false}`)
	}))
	defer srv.Close()
	opts := testOptions(srv.URL)
	opts.ClientID, opts.ClientSecret = "gw:1 é", "s3cr:t p+%&="
	c, _ := New(opts)
	_, _ = c.Introspect(context.Background(), "abc.DEF-_~+/==")
	want := seen{"POST", "application/x-www-form-urlencoded", "abc.DEF-_~+/==", "access_token", "gw:1 é", "s3cr:t p+%&=", true}
	if s := <-got; s != want {
		t.Fatalf("request = %+v\nwant      %+v", s, want)
	}
}

func TestTechnicalFailures(t *testing.T) {
	t.Run("status", func(t *testing.T) {
		for _, status := range []int{400, 401, 403, 404, 500, 503} {
			srv := newAnswerServer(t, status, `{"active":false}`)
			c, _ := New(testOptions(srv.URL))
			_, err := c.Introspect(context.Background(), "tok")
			technical(t, err)
		}
	})
	t.Run("redirect not followed", func(t *testing.T) {
		target := newAnswerServer(t, 200, `{"active":true}`)
		redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
		defer redirector.Close()
		opts := testOptions(redirector.URL)
		opts.HTTPClient = &http.Client{} // one that would follow
		c, _ := New(opts)
		_, err := c.Introspect(context.Background(), "tok")
		technical(t, err)
		if n := target.hits.Load(); n != 0 {
			t.Fatalf("redirect target got %d requests (token and credentials leaked)", n)
		}
	})
	t.Run("oversized", func(t *testing.T) {
		srv := newAnswerServer(t, 200, `{"active":false,"pad":"`+strings.Repeat("a", idp.MaxBodyBytes)+`"}`)
		c, _ := New(testOptions(srv.URL))
		_, err := c.Introspect(context.Background(), "tok")
		technical(t, err)
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		opts := testOptions(srv.URL)
		opts.Timeout = 50 * time.Millisecond
		c, _ := New(opts)
		_, err := c.Introspect(context.Background(), "tok")
		technical(t, err)
	})
	t.Run("not cached", func(t *testing.T) {
		srv := newAnswerServer(t, 503, ``)
		c, _ := New(testOptions(srv.URL))
		for range 3 {
			_, _ = c.Introspect(context.Background(), "tok")
		}
		if got := srv.hits.Load(); got != 3 {
			t.Fatalf("requests = %d; want 3", got)
		}
	})
}

func TestNegativeCache(t *testing.T) {
	tests := []struct {
		name              string
		cacheTTL, negTTL  time.Duration
		wantCalls, after6 int64 // after two calls, and one more after 6s
	}{
		{"default 5s", time.Minute, 0, 1, 2},
		{"disabled", time.Minute, -1, 2, 3},
		{"no cache at all", 0, 30 * time.Second, 2, 3},
		{"capped by CacheTTL", 2 * time.Second, 30 * time.Second, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newAnswerServer(t, 200, `{"active":false}`)
			opts := testOptions(srv.URL)
			opts.CacheTTL, opts.NegativeTTL = tt.cacheTTL, tt.negTTL
			c, clk := newClient(t, opts)
			for range 2 {
				if _, err := c.Introspect(context.Background(), "tok"); !errors.Is(err, ErrInactive) {
					t.Fatal(err)
				}
			}
			if got := srv.hits.Load(); got != tt.wantCalls {
				t.Fatalf("requests = %d; want %d", got, tt.wantCalls)
			}
			clk.Advance(6 * time.Second)
			_, _ = c.Introspect(context.Background(), "tok")
			if got := srv.hits.Load(); got != tt.after6 {
				t.Fatalf("requests after 6s = %d; want %d", got, tt.after6)
			}
		})
	}
}

func TestCacheEntryEndsAtExp(t *testing.T) {
	exp := time.Now().Add(10 * time.Second)
	srv := newAnswerServer(t, 200, fmt.Sprintf(`{"active":true,"iss":"https://as.example","aud":"gateway","exp":%d}`, exp.Unix()))
	opts := testOptions(srv.URL)
	opts.CacheTTL = time.Hour
	c, clk := newClient(t, opts)
	if _, err := c.Introspect(context.Background(), "tok"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Until(exp) + time.Second)
	if _, err := c.Introspect(context.Background(), "tok"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("past exp: %v; want ErrInvalid (expired)", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("requests = %d; want 2", got)
	}
}

func TestMemoryCacheBounded(t *testing.T) {
	srv := newAnswerServer(t, 200, `{"active":false}`)
	opts := testOptions(srv.URL)
	opts.MaxEntries = 3
	c, _ := New(opts)
	for i := range 20 {
		_, _ = c.Introspect(context.Background(), fmt.Sprintf("tok%d", i))
		if n := memLen(c.mem); n > 3 {
			t.Fatalf("cache holds %d entries; want at most 3", n)
		}
	}
	for k := range c.mem.m {
		if strings.Contains(string(k[:]), "tok") {
			t.Fatal("cache key holds the token")
		}
	}
}

func TestCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		_, _ = fmt.Fprintf(w, `{"active":true,"iss":"https://as.example","aud":"gateway","exp":%d}`, time.Now().Add(time.Hour).Unix())
	}))
	defer srv.Close()
	c, _ := New(testOptions(srv.URL))
	done := make(chan error, 1)
	go func() {
		_, err := c.Introspect(context.Background(), "tok")
		done <- err
	}()
	poll.True(t, 5*time.Second, "the first request at the provider", func() bool { return hits.Load() > 0 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Introspect(ctx, "tok"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the patient caller: %v", err)
	}
	if got := hits.Load(); got != 1 {
		t.Fatalf("requests = %d; want 1", got)
	}
}

// memLen counts the entries of c.
func memLen(c *memCache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func TestNewValidation(t *testing.T) {
	ok := Options{URL: "https://as.example/introspect", ClientID: "gw", ClientSecret: "sup3r-s3cret-value"}
	tests := []struct {
		name string
		mod  func(*Options)
	}{
		{"no url", func(o *Options) { o.URL = "" }},
		{"relative url", func(o *Options) { o.URL = "/introspect" }},
		{"ftp url", func(o *Options) { o.URL = "ftp://as.example/x" }},
		{"url with credentials", func(o *Options) { o.URL = "ftp://gw:sup3r-s3cret-value@as.example/x" }},
		{"no client id", func(o *Options) { o.ClientID = "" }},
		{"no secret", func(o *Options) { o.ClientSecret = "" }},
		{"negative ttl", func(o *Options) { o.CacheTTL = -time.Second }},
		{"negative timeout", func(o *Options) { o.Timeout = -time.Second }},
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			_, err := New(o)
			if err == nil {
				t.Fatal("New accepted bad options")
			}
			if strings.Contains(err.Error(), "sup3r-s3cret-value") {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
}

func BenchmarkIntrospectCached(b *testing.B) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = fmt.Fprintf(w, `{"active":true,"iss":"https://as.example","aud":"gateway","scope":"a b","exp":%d}`, time.Now().Add(time.Hour).Unix())
	}))
	defer srv.Close()
	c, err := New(testOptions(srv.URL))
	if err != nil {
		b.Fatal(err)
	}
	tok := strings.Repeat("x", 40) // a typical opaque token
	ctx := context.Background()
	if _, err := c.Introspect(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Introspect(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	if n := hits.Load(); n != 1 {
		b.Fatalf("requests = %d", n)
	}
}

func FuzzJudge(f *testing.F) {
	f.Add([]byte(`{"active":true,"exp":1e10,"aud":["a"],"iss":"https://as.example"}`))
	f.Add([]byte(`{"active":false}`))
	f.Add([]byte(`{"active":true,"exp":-1,"nbf":"x","aud":{}}`))
	c, _ := New(Options{URL: "https://as.example/i", ClientID: "a", ClientSecret: "b", Issuer: "https://as.example", Audience: "a"})
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := c.judge(body)
		if err == nil && e == nil {
			t.Fatal("no verdict and no error")
		}
		if e != nil {
			if r, err := e.answer(); err == nil && (!r.Active || !r.ExpiresAt.After(time.Now())) {
				t.Fatalf("accepted %+v", r)
			}
		}
	})
}
