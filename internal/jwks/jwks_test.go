package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/testutil/clocktest"
)

// keyServer serves a JWKS document that tests can swap, and counts fetches.
type keyServer struct {
	*httptest.Server
	mu    sync.Mutex
	body  []byte
	hits  atomic.Int64
	block chan struct{} // when set, requests wait for it to close
}

func newKeyServer(t *testing.T, keys ...jose.JSONWebKey) *keyServer {
	t.Helper()
	ks := &keyServer{}
	ks.set(t, keys...)
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.hits.Add(1)
		ks.mu.Lock()
		body, block := ks.body, ks.block
		ks.mu.Unlock()
		if block != nil {
			<-block
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) set(t *testing.T, keys ...jose.JSONWebKey) {
	t.Helper()
	body, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatalf("marshal jwks: %v", err)
	}
	ks.setRaw(body)
}

func (ks *keyServer) setRaw(body []byte) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.body = body
}

func newSet(url string, opts Options) (*Set, *clocktest.Fake) {
	c := clocktest.NewFake(time.Unix(1_800_000_000, 0))
	opts.Now = c.Now
	return New(url, nil, opts), c
}

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(kid, alg string, key any) jose.JSONWebKey {
	return jose.JSONWebKey{KeyID: kid, Algorithm: alg, Use: "sig", Key: key}
}

func TestKeyFitsAlgorithm(t *testing.T) {
	rsa1 := rsaKey(t, 2048)
	p256, p384 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384())
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	srv := newKeyServer(t,
		pub("rsa", "", &rsa1.PublicKey),
		pub("rsa-ps", "PS256", &rsa1.PublicKey),
		pub("p256", "", &p256.PublicKey),
		pub("p384", "ES384", &p384.PublicKey),
		pub("ed", "", edPub),
	)
	s := New(srv.URL, nil, Options{})
	tests := []struct {
		kid, alg string
		want     crypto.PublicKey
		wantErr  error
	}{
		{"rsa", "RS256", &rsa1.PublicKey, nil},
		{"rsa", "PS512", &rsa1.PublicKey, nil},
		{"rsa", "ES256", nil, ErrKeyMismatch},
		{"rsa", "EdDSA", nil, ErrKeyMismatch},
		{"rsa-ps", "PS256", &rsa1.PublicKey, nil},
		{"rsa-ps", "RS256", nil, ErrKeyMismatch}, // alg of the JWK wins
		{"p256", "ES256", &p256.PublicKey, nil},
		{"p256", "ES384", nil, ErrKeyMismatch}, // curve must match
		{"p256", "RS256", nil, ErrKeyMismatch},
		{"p384", "ES384", &p384.PublicKey, nil},
		{"p384", "ES512", nil, ErrKeyMismatch},
		{"ed", "EdDSA", edPub, nil},
		{"ed", "ES256", nil, ErrKeyMismatch},
		{"rsa", "HS256", nil, ErrUnsupportedAlg}, // never an HMAC secret from a public key
		{"rsa", "none", nil, ErrUnsupportedAlg},
		{"rsa", "", nil, ErrUnsupportedAlg},
		{"missing", "RS256", nil, ErrKeyNotFound},
		{"", "PS256", nil, ErrKeyNotFound},  // two RSA keys fit: ambiguous without kid
		{"", "RS256", &rsa1.PublicKey, nil}, // only one fits RS256
		{"", "EdDSA", edPub, nil},           // exactly one Ed25519 key
	}
	for _, tt := range tests {
		t.Run(tt.kid+"/"+tt.alg, func(t *testing.T) {
			got, err := s.Key(context.Background(), tt.kid, tt.alg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			}
			if tt.want != nil {
				if eq, ok := got.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(tt.want) {
					t.Fatalf("got key %T; want %T", got, tt.want)
				}
			}
		})
	}
}

func TestRefusedKeys(t *testing.T) {
	rsaPriv := rsaKey(t, 2048)
	short := rsaKey(t, 1024)
	ec := ecKey(t, elliptic.P256())
	ops := func(k jose.JSONWebKey, ops string) json.RawMessage {
		b, _ := k.MarshalJSON()
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m["key_ops"] = []string{ops}
		b, _ = json.Marshal(m)
		return b
	}
	keys := []json.RawMessage{}
	add := func(k jose.JSONWebKey) {
		b, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, b)
	}
	add(pub("private-rsa", "RS256", rsaPriv))
	add(pub("private-ec", "ES256", ec))
	add(pub("oct", "HS256", []byte("0123456789abcdef0123456789abcdef")))
	add(jose.JSONWebKey{KeyID: "enc", Use: "enc", Key: &rsaPriv.PublicKey})
	add(pub("short", "RS256", &short.PublicKey))
	keys = append(keys, ops(pub("encrypt-only", "", &ec.PublicKey), "encrypt"))
	keys = append(keys, json.RawMessage(`{"kid":"broken","kty":"RSA","n":"!!","e":"AQAB"}`))
	keys = append(keys, json.RawMessage(`{"kid":"future","kty":"AKP","alg":"ML-DSA-44","pub":"AAAA"}`))
	add(pub("good", "ES256", &ec.PublicKey))
	body, _ := json.Marshal(map[string]any{"keys": keys})
	srv := newKeyServer(t)
	srv.setRaw(body)
	s := New(srv.URL, nil, Options{})

	tests := []struct{ kid, alg string }{
		{"private-rsa", "RS256"}, {"private-ec", "ES256"}, {"oct", "RS256"}, {"enc", "RS256"},
		{"short", "RS256"}, {"encrypt-only", "ES256"}, {"broken", "RS256"}, {"future", "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.kid, func(t *testing.T) {
			if k, err := s.Key(context.Background(), tt.kid, tt.alg); !errors.Is(err, ErrKeyRefused) {
				t.Fatalf("Key = %T, %v; want ErrKeyRefused", k, err)
			}
		})
	}
	// The bad keys spoil nothing for the good one, and are not candidates
	// for tokens without kid.
	for _, kid := range []string{"good", ""} {
		if _, err := s.Key(context.Background(), kid, "ES256"); err != nil {
			t.Fatalf("kid %q: %v", kid, err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches = %d; want 1 (a refused key is not an unknown kid)", got)
	}
}

func TestRotationAndRefetchLimit(t *testing.T) {
	k1, k2 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256())
	srv := newKeyServer(t, pub("k1", "ES256", &k1.PublicKey))
	s, clk := newSet(srv.URL, Options{MinRefreshInterval: 30 * time.Second})
	ctx := context.Background()

	if _, err := s.Key(ctx, "k1", "ES256"); err != nil {
		t.Fatal(err)
	}
	// The provider rotates: k2 appears. A token with k2 right after the
	// first fetch is refused (rate limit), and causes no fetch.
	srv.set(t, pub("k1", "ES256", &k1.PublicKey), pub("k2", "ES256", &k2.PublicKey))
	if _, err := s.Key(ctx, "k2", "ES256"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("k2 within the refresh interval: %v; want ErrKeyNotFound", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches = %d; want 1", got)
	}
	clk.Advance(31 * time.Second)
	if _, err := s.Key(ctx, "k2", "ES256"); err != nil {
		t.Fatalf("k2 after the interval: %v", err)
	}
	// A flood of random kids makes at most one fetch per interval.
	for i := range 1000 {
		if _, err := s.Key(ctx, "random-"+string(rune('a'+i%26)), "ES256"); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("random kid: %v", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches after a flood of unknown kids = %d; want 2", got)
	}
	clk.Advance(31 * time.Second)
	_, _ = s.Key(ctx, "random", "ES256")
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("fetches after the next interval = %d; want 3", got)
	}
}

func TestTTLDropsRemovedKeys(t *testing.T) {
	k1, k2 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256())
	srv := newKeyServer(t, pub("k1", "ES256", &k1.PublicKey))
	s, clk := newSet(srv.URL, Options{TTL: 10 * time.Minute})
	ctx := context.Background()
	if _, err := s.Key(ctx, "k1", "ES256"); err != nil {
		t.Fatal(err)
	}
	srv.set(t, pub("k2", "ES256", &k2.PublicKey))
	clk.Advance(9 * time.Minute)
	if _, err := s.Key(ctx, "k1", "ES256"); err != nil {
		t.Fatalf("k1 within TTL: %v", err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := s.Key(ctx, "k1", "ES256"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("k1 after TTL, removed by the provider: %v; want ErrKeyNotFound", err)
	}
}

func TestServerDown(t *testing.T) {
	k1 := ecKey(t, elliptic.P256())
	srv := newKeyServer(t, pub("k1", "ES256", &k1.PublicKey))
	s, clk := newSet(srv.URL, Options{TTL: 10 * time.Minute, Grace: time.Hour})
	ctx := context.Background()
	if _, err := s.Key(ctx, "k1", "ES256"); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	clk.Advance(11 * time.Minute) // past TTL: refetch fails, the old set is served
	if _, err := s.Key(ctx, "k1", "ES256"); err != nil {
		t.Fatalf("within grace: %v", err)
	}
	clk.Advance(time.Minute) // an unknown kid while down is a technical failure
	if _, err := s.Key(ctx, "k9", "ES256"); !errors.Is(err, ErrFetch) {
		t.Fatalf("unknown kid while down: %v; want ErrFetch", err)
	}
	clk.Advance(time.Hour) // past TTL+grace: nothing is served
	if _, err := s.Key(ctx, "k1", "ES256"); !errors.Is(err, ErrFetch) {
		t.Fatalf("past grace: %v; want ErrFetch", err)
	}

	never := New("http://127.0.0.1:1/jwks", nil, Options{})
	if _, err := never.Key(ctx, "k1", "ES256"); !errors.Is(err, ErrFetch) {
		t.Fatalf("never reachable: %v; want ErrFetch", err)
	}
}

func TestBadDocuments(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"not json", 200, "hello"},
		{"html", 200, "<html><body>login</body></html>"},
		{"empty object", 200, "{}"},
		{"array", 200, "[]"},
		{"keys not array", 200, `{"keys":"x"}`},
		{"null", 200, "null"},
		{"server error", 500, `{"keys":[]}`},
		{"not found", 404, ""},
		{"oversized", 200, `{"keys":[],"pad":"` + strings.Repeat("a", idp.MaxBodyBytes) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			s := New(srv.URL, nil, Options{})
			if _, err := s.Key(context.Background(), "k1", "RS256"); !errors.Is(err, ErrFetch) {
				t.Fatalf("err = %v; want ErrFetch", err)
			}
		})
	}
}

// TestSizeLimitIsInclusive: a key set of exactly idp.MaxBodyBytes is read,
// one byte more is refused.
func TestSizeLimitIsInclusive(t *testing.T) {
	k := ecKey(t, elliptic.P256())
	srv := newKeyServer(t, pub("k1", "ES256", &k.PublicKey))
	srv.mu.Lock()
	doc := srv.body
	srv.mu.Unlock()
	padded := func(n int) []byte { // doc with a "pad" member, n bytes in all
		head := append([]byte(nil), doc[:len(doc)-1]...)
		head = append(head, `,"pad":"`...)
		return append(append(head, strings.Repeat("a", n-len(head)-2)...), `"}`...)
	}
	srv.setRaw(padded(idp.MaxBodyBytes))
	if _, err := New(srv.URL, nil, Options{}).Key(context.Background(), "k1", "ES256"); err != nil {
		t.Fatalf("body of exactly idp.MaxBodyBytes: %v", err)
	}
	srv.setRaw(padded(idp.MaxBodyBytes + 1))
	if _, err := New(srv.URL, nil, Options{}).Key(context.Background(), "k1", "ES256"); !errors.Is(err, ErrFetch) || !errors.Is(err, idp.ErrBodyTooLarge) {
		t.Fatalf("body one byte over: %v; want ErrFetch (too large)", err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	k := ecKey(t, elliptic.P256())
	target := newKeyServer(t, pub("k1", "ES256", &k.PublicKey))
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	defer redirector.Close()
	// Even with a caller's client that would follow redirects.
	s := New(redirector.URL, &http.Client{}, Options{})
	if _, err := s.Key(context.Background(), "k1", "ES256"); !errors.Is(err, ErrFetch) {
		t.Fatalf("err = %v; want ErrFetch", err)
	}
	if got := target.hits.Load(); got != 0 {
		t.Fatalf("redirect target got %d requests; want 0", got)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s := New(srv.URL, nil, Options{Timeout: 50 * time.Millisecond})
	if _, err := s.Key(context.Background(), "k1", "ES256"); !errors.Is(err, ErrFetch) {
		t.Fatalf("err = %v; want ErrFetch", err)
	}
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	k := ecKey(t, elliptic.P256())
	srv := newKeyServer(t, pub("k1", "ES256", &k.PublicKey))
	block := make(chan struct{})
	srv.mu.Lock()
	srv.block = block
	srv.mu.Unlock()
	s := New(srv.URL, nil, Options{})

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := s.Key(context.Background(), "k1", "ES256")
			errs <- err
		})
	}
	// A caller that gives up does not break the shared fetch.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Key(ctx, "k1", "ES256"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
	close(block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches = %d; want 1", got)
	}
}

func BenchmarkKeyCached(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	body, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub("k1", "ES256", &k.PublicKey)}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	s := New(srv.URL, nil, Options{})
	ctx := context.Background()
	if _, err := s.Key(ctx, "k1", "ES256"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Key(ctx, "k1", "ES256"); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[null, 1, "x", {}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parse(data)
		if err != nil {
			return
		}
		for kid := range ks.byKID {
			for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
				_, _ = ks.lookup(kid, alg)
			}
		}
	})
}
