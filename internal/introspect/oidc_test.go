package introspect

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/strategies"
	"github.com/authgateway/authgateway/internal/testutil/clocktest"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// gatewayOptions are the options of the gateway's oauth2 strategy against p.
func gatewayOptions(p *oidctest.Provider) Options {
	return Options{
		URL:          p.IntrospectionURL,
		ClientID:     oidctest.GatewayClientID,
		ClientSecret: oidctest.GatewayClientSecret,
		CacheTTL:     time.Minute,
		Issuer:       p.Issuer,
		Audience:     oidctest.GatewayClientID,
	}
}

func newClient(t testing.TB, opts Options) (*Client, *clocktest.Offset) {
	t.Helper()
	clk := &clocktest.Offset{}
	opts.Now = clk.Now
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, clk
}

// technical fails the test unless err is a technical error (not a denial).
func technical(t *testing.T, err error) {
	t.Helper()
	if err == nil || errors.Is(err, ErrInactive) || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v; want a technical error", err)
	}
}

func TestActiveTokens(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	tests := []struct{ name, id, secret string }{
		{"opaque", oidctest.ServiceClientID, oidctest.ServiceClientSecret},
		{"jwt", oidctest.JWTServiceClientID, oidctest.JWTServiceClientSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, gatewayOptions(p))
			tok := p.ClientCredentialsToken(t, tt.id, tt.secret, "data:read", "data:write")
			r, err := c.Introspect(context.Background(), tok)
			if err != nil {
				t.Fatalf("Introspect: %v", err)
			}
			if !r.Active || r.Subject != tt.id || r.ClientID != tt.id || r.Issuer != p.Issuer ||
				!slices.Equal(r.Scopes(), []string{"data:read", "data:write"}) ||
				!slices.Contains(r.Audience, oidctest.GatewayClientID) || strings.ToLower(r.TokenType) != "bearer" {
				t.Fatalf("result = %+v", r)
			}
			if !r.ExpiresAt.After(time.Now()) {
				t.Fatalf("ExpiresAt = %v; want future", r.ExpiresAt)
			}
			if roles, _ := r.Extra["roles"].([]any); len(roles) != 1 || roles[0] != oidctest.ServiceRole {
				t.Fatalf("Extra[roles] = %v", r.Extra["roles"])
			}
		})
	}
}

func TestRevokedToken(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	ctx := context.Background()

	t.Run("cached until the entry ends", func(t *testing.T) {
		c, clk := newClient(t, gatewayOptions(p))
		tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
		before := p.IntrospectionRequests()
		if _, err := c.Introspect(ctx, tok); err != nil {
			t.Fatal(err)
		}
		p.Revoke(t, tok)
		if _, err := c.Introspect(ctx, tok); err != nil {
			t.Fatalf("within CacheTTL: %v; want the cached answer", err)
		}
		clk.Advance(time.Minute + time.Second)
		if _, err := c.Introspect(ctx, tok); !errors.Is(err, ErrInactive) {
			t.Fatalf("after CacheTTL: %v; want ErrInactive", err)
		}
		if got := p.IntrospectionRequests() - before; got != 2 {
			t.Fatalf("introspection requests = %d; want 2", got)
		}
	})
	t.Run("no cache: refused at once", func(t *testing.T) {
		opts := gatewayOptions(p)
		opts.CacheTTL = 0
		c, _ := newClient(t, opts)
		tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
		if _, err := c.Introspect(ctx, tok); err != nil {
			t.Fatal(err)
		}
		p.Revoke(t, tok)
		if _, err := c.Introspect(ctx, tok); !errors.Is(err, ErrInactive) {
			t.Fatalf("after revocation: %v; want ErrInactive", err)
		}
	})
}

func TestGarbageTokens(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	tests := []struct {
		name, token string
		want        error
		wantCalls   int64
	}{
		{"unknown", "garbage-token", ErrInactive, 1},
		{"forged jwt", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2ln", ErrInactive, 1},
		{"empty", "", ErrInvalid, 0},
		{"space", "a b", ErrInvalid, 0},
		{"newline", "tok\nX-Auth-Subject: admin", ErrInvalid, 0},
		{"nul", "tok\x00", ErrInvalid, 0},
		{"only padding", "===", ErrInvalid, 0},
		{"huge", strings.Repeat("a", 9000), ErrInvalid, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, gatewayOptions(p))
			before := p.IntrospectionRequests()
			r, err := c.Introspect(context.Background(), tt.token)
			if r != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Introspect = %v, %v; want %v", r, err, tt.want)
			}
			var d *DeniedError
			if !errors.As(err, &d) || d.Reason == "" {
				t.Fatalf("err %v carries no reason", err)
			}
			if got := p.IntrospectionRequests() - before; got != tt.wantCalls {
				t.Fatalf("introspection requests = %d; want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestOneTokenOneCall(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	c, _ := newClient(t, gatewayOptions(p))
	tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret, "data:read")
	ctx := context.Background()

	// Concurrent first, on a cold cache: singleflight must merge them.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			_, err := c.Introspect(ctx, tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 1000 {
		if _, err := c.Introspect(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.IntrospectionRequests(); got != 1 {
		t.Fatalf("introspection requests = %d; want 1", got)
	}
}

func TestProviderDown(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	c, clk := newClient(t, gatewayOptions(p))
	ctx := context.Background()
	cachedTok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	otherTok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	if _, err := c.Introspect(ctx, cachedTok); err != nil {
		t.Fatal(err)
	}

	p.Stop()
	if _, err := c.Introspect(ctx, cachedTok); err != nil {
		t.Fatalf("cached token while the provider is down: %v", err)
	}
	_, err := c.Introspect(ctx, otherTok)
	technical(t, err)
	_, err = c.Introspect(ctx, otherTok) // a technical failure is not cached
	technical(t, err)
	clk.Advance(time.Minute + time.Second)
	_, err = c.Introspect(ctx, cachedTok)
	technical(t, err)

	p.Restart()
	if _, err := c.Introspect(ctx, otherTok); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestExpiredToken(t *testing.T) {
	// The provider's clock moves with the test's too: no waiting for exp.
	pclk := &clocktest.Offset{}
	p := oidctest.Start(t, oidctest.Options{AccessTokenTTL: 2 * time.Second, Now: pclk.Now})
	opts := gatewayOptions(p)
	opts.CacheTTL = time.Hour
	c, clk := newClient(t, opts)
	ctx := context.Background()
	tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	before := p.IntrospectionRequests()
	r, err := c.Introspect(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	exp := r.ExpiresAt

	// Our clock past exp while the provider's is not: the cache entry ended
	// at exp (not after CacheTTL), and the provider's active:true with a
	// past exp is refused by our own check.
	clk.Advance(time.Until(exp) + time.Second)
	if _, err := c.Introspect(ctx, tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("past exp on our clock: %v; want ErrInvalid", err)
	}
	if got := p.IntrospectionRequests() - before; got != 2 {
		t.Fatalf("introspection requests = %d; want 2 (the entry must not outlive exp)", got)
	}

	// Both clocks past exp: the provider says inactive.
	fresh, fclk := newClient(t, opts)
	pclk.Advance(time.Until(exp) + time.Second)
	fclk.Advance(time.Until(exp) + time.Second)
	if _, err := fresh.Introspect(ctx, tok); !errors.Is(err, ErrInactive) {
		t.Fatalf("expired at the provider: %v; want ErrInactive", err)
	}
}

func TestAudienceAndIssuer(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	other := oidctest.Start(t, oidctest.Options{})
	svcTok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	otherAudTok := p.ClientCredentialsToken(t, oidctest.OtherClientID, oidctest.OtherClientSecret)
	foreignTok := other.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)

	tests := []struct {
		name   string
		opts   func(*Options)
		token  string
		want   error
		reason strategies.Reason
	}{
		{"our audience", func(*Options) {}, svcTok, nil, ""},
		{"other audience", func(*Options) {}, otherAudTok, ErrInvalid, "wrong_audience"},
		{"no audience configured", func(o *Options) { o.Audience = "" }, otherAudTok, nil, ""},
		{"token of another provider", func(*Options) {}, foreignTok, ErrInactive, "inactive"},
		{"other issuer expected", func(o *Options) { o.Issuer = other.Issuer }, svcTok, ErrInvalid, "wrong_issuer"},
		{"other issuer expected, its endpoint", func(o *Options) { o.Issuer, o.IssuerEndpoint = other.Issuer, true }, svcTok, ErrInvalid, "wrong_issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := gatewayOptions(p)
			tt.opts(&opts)
			c, _ := newClient(t, opts)
			_, err := c.Introspect(context.Background(), tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
			var d *DeniedError
			if tt.want != nil && (!errors.As(err, &d) || d.Reason != tt.reason) {
				t.Fatalf("err = %v; want reason %q", err, tt.reason)
			}
		})
	}
}

// TestAnswerWithoutIssuer runs against the zitadel example OP as it answers
// unchanged, without iss (issue 14 finding 16): accepted from the issuer's
// own endpoint, refused where the endpoint is not known to be the issuer's.
func TestAnswerWithoutIssuer(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{IntrospectionWithoutIssuer: true})
	tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	opts := gatewayOptions(p)
	opts.IssuerEndpoint = true
	c, _ := newClient(t, opts)
	r, err := c.Introspect(context.Background(), tok)
	if err != nil || r.Subject != oidctest.ServiceClientID || r.Issuer != "" {
		t.Fatalf("Introspect = %+v, %v; want the service client's token, without iss", r, err)
	}
	opts.IssuerEndpoint = false
	c, _ = newClient(t, opts)
	var d *DeniedError
	if _, err := c.Introspect(context.Background(), tok); !errors.As(err, &d) || d.Reason != "wrong_issuer" {
		t.Fatalf("err = %v; want wrong_issuer when the endpoint is not the issuer's", err)
	}
}

func TestCredentialsEncoding(t *testing.T) {
	rs := oidctest.Client{ID: "rs:1 é", Secret: "p@ss w:rd+%&=", Introspect: true}
	p := oidctest.Start(t, oidctest.Options{Clients: append(oidctest.DefaultClients(), rs)})
	tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	opts := gatewayOptions(p)
	opts.ClientID, opts.ClientSecret = rs.ID, rs.Secret
	c, _ := newClient(t, opts)
	if _, err := c.Introspect(context.Background(), tok); err != nil {
		t.Fatalf("with special characters in id and secret: %v", err)
	}
	opts.ClientSecret = "wrong"
	c, _ = newClient(t, opts)
	_, err := c.Introspect(context.Background(), tok)
	technical(t, err) // our misconfiguration, not the token's fault
}

func TestRedisSharedCache(t *testing.T) {
	p := oidctest.Start(t, oidctest.Options{})
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	opts := gatewayOptions(p)
	opts.Redis = rdb
	first, _ := newClient(t, opts)
	second, _ := newClient(t, opts)
	tok := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)

	if _, err := first.Introspect(ctx, tok); err != nil {
		t.Fatal(err)
	}
	r, err := second.Introspect(ctx, tok)
	if err != nil || r.Subject != oidctest.ServiceClientID {
		t.Fatalf("second replica: %+v, %v", r, err)
	}
	if _, err := first.Introspect(ctx, "garbage"); !errors.Is(err, ErrInactive) {
		t.Fatal(err)
	}
	if _, err := second.Introspect(ctx, "garbage"); !errors.Is(err, ErrInactive) {
		t.Fatalf("cached denial on the second replica: %v", err)
	}
	// The first replica asked twice (nothing was cached); the second
	// never.
	if got := p.IntrospectionRequests(); got != 2 {
		t.Fatalf("introspection requests = %d; want 2 (none by the second replica)", got)
	}

	// Neither keys nor values hold the token; entries expire.
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	for _, k := range keys {
		v, _ := rdb.Get(ctx, k).Result()
		if strings.Contains(k, tok) || strings.Contains(v, tok) || strings.Contains(k, "garbage") || strings.Contains(v, "garbage") {
			t.Fatalf("redis entry %q = %q holds the token", k, v)
		}
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Minute {
			t.Fatalf("TTL of %q = %v; want (0, 1m]", k, ttl)
		}
	}

	// A client with other checks does not reuse these verdicts.
	strict := opts
	strict.Audience = "billing"
	third, _ := newClient(t, strict)
	if _, err := third.Introspect(ctx, tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("client with another audience: %v; want ErrInvalid", err)
	}
	if got := p.IntrospectionRequests(); got != 3 {
		t.Fatalf("introspection requests = %d; want 3 (one by the third client)", got)
	}

	// Redis gone: no failure, and the memory cache stands in.
	srv.Stop()
	other := p.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	for range 10 {
		if _, err := first.Introspect(ctx, other); err != nil {
			t.Fatalf("with Redis down: %v", err)
		}
	}
	if got := p.IntrospectionRequests(); got != 4 {
		t.Fatalf("introspection requests with Redis down = %d; want 4 (one more)", got)
	}
}

func BenchmarkIntrospectCachedRedis(b *testing.B) {
	p := oidctest.Start(b, oidctest.Options{})
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = rdb.Close() })
	opts := gatewayOptions(p)
	opts.Redis = rdb
	c, _ := newClient(b, opts)
	tok := p.ClientCredentialsToken(b, oidctest.ServiceClientID, oidctest.ServiceClientSecret, "data:read")
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
	if n := p.IntrospectionRequests(); n != 1 {
		b.Fatalf("introspection requests = %d", n)
	}
}
