// Package introspect asks an authorization server whether an access token is
// active (RFC 7662 token introspection) and caches the answer.
//
// The client authenticates with client_secret_basic. A token is accepted only
// if the server says active:true, exp is present and in the future, the
// token_type (if given) is an access token's, the token is not
// sender-constrained (cnf), and iss/aud match when configured (an answer
// without iss is accepted from the issuer's own endpoint: RFC 7662 makes iss
// optional).
//
// The cache is keyed by the SHA-256 of the token, never the token itself.
// Answers live for min(CacheTTL, exp-now), less up to a random fifth of
// CacheTTL so that tokens first seen together expire apart; refusals for
// NegativeTTL; technical failures are never cached. With Redis the cache is shared by replicas.
package introspect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/authgateway/authgateway/internal/idp"
	"github.com/authgateway/authgateway/internal/strategies"
)

// Denials: the token is not good. Every other error of Introspect is a
// technical failure (timeout, 5xx, malformed answer): the caller fails
// closed on both, but only a denial is the client's fault.
var (
	// ErrInactive: the authorization server says the token is not active.
	ErrInactive = errors.New("introspect: token inactive")
	// ErrInvalid: the token is malformed, or active but fails our checks.
	ErrInvalid = errors.New("introspect: token invalid")
)

// DeniedError is a denial with the gateway's reason for it (inactive,
// expired, missing_claim, not_yet_valid, wrong_issuer, wrong_audience,
// wrong_token_type, sender_constrained, malformed_token). It matches
// ErrInactive or ErrInvalid with errors.Is.
type DeniedError struct {
	Err    error // ErrInactive or ErrInvalid
	Reason strategies.Reason
}

func (e *DeniedError) Error() string { return e.Err.Error() + ": " + string(e.Reason) }
func (e *DeniedError) Unwrap() error { return e.Err }

func deny(err error, reason strategies.Reason) *DeniedError {
	return &DeniedError{Err: err, Reason: reason}
}

const (
	nbfLeeway   = 30 * time.Second
	redisPrefix = "authgateway:introspect:"
	// A Redis that does not answer within redisTimeout is left alone for
	// redisBackoff, the memory cache standing in: a dead Redis must not add
	// its dial retries (seconds) to every request.
	redisTimeout = 200 * time.Millisecond
	redisBackoff = time.Second
)

// Options configure a Client.
type Options struct {
	// OnCache, when set, is told of each cache lookup's result (metrics).
	OnCache func(hit bool)
	// URL is the introspection endpoint; required, http or https.
	URL string
	// ClientID and ClientSecret authenticate us (client_secret_basic);
	// required.
	ClientID, ClientSecret string
	// Timeout bounds one introspection request; default 5s.
	Timeout time.Duration
	// CacheTTL is the longest an answer is reused; 0 means no cache at all
	// (every Introspect asks the server, so revocation is immediate).
	CacheTTL time.Duration
	// NegativeTTL is how long a refusal is reused; default 5s, never longer
	// than CacheTTL, and 0 when CacheTTL is 0. Negative disables it.
	NegativeTTL time.Duration
	// MaxEntries bounds the in-memory cache; default 10000. When full,
	// expired entries go, else an arbitrary one.
	MaxEntries int
	// Issuer, if set, must equal the answer's iss; an answer without iss
	// is refused unless IssuerEndpoint.
	Issuer string
	// IssuerEndpoint says URL is Issuer's own introspection endpoint (the
	// caller found it in Issuer's discovery document, or was configured with
	// it for Issuer): an answer from it speaks for Issuer, so iss may be left
	// out, as RFC 7662 allows. A present iss must still equal Issuer.
	IssuerEndpoint bool
	// Audience, if set, must be in the answer's aud (a string or an array).
	Audience string
	// HTTPClient is used as an idp.Harden copy: it never follows a redirect
	// (the token and our credentials are never sent elsewhere). nil: a new
	// one.
	HTTPClient *http.Client
	// Redis, if set, holds the cache instead of memory, shared by replicas.
	// A Redis failure is no error: the memory cache stands in for a second.
	Redis redis.UniversalClient
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Result is an active token's introspection answer. Results come from a
// shared cache: treat them as read-only.
type Result struct {
	Active    bool      `json:"active"`
	Subject   string    `json:"sub,omitempty"`
	ClientID  string    `json:"client_id,omitempty"`
	Scope     string    `json:"scope,omitempty"` // space-separated
	Username  string    `json:"username,omitempty"`
	TokenType string    `json:"token_type,omitempty"`
	Issuer    string    `json:"iss,omitempty"`
	Audience  []string  `json:"aud,omitempty"`
	ExpiresAt time.Time `json:"exp"`
	// Extra holds every other member of the answer (roles, email, iat, ...)
	// as encoding/json decodes it.
	Extra map[string]any `json:"extra,omitempty"`

	claims atomic.Pointer[map[string]any] // built once by Claims
}

// Scopes splits Scope.
func (r *Result) Scopes() []string { return strings.Fields(r.Scope) }

// Claims is the whole answer as one map (the members Result has fields for
// and Extra), for templates and policies that read claims by name. Built
// once per Result and shared: treat it as read-only.
func (r *Result) Claims() map[string]any {
	if m := r.claims.Load(); m != nil {
		return *m
	}
	m := make(map[string]any, len(r.Extra)+len(known))
	for k, v := range r.Extra {
		m[k] = v
	}
	m["active"] = r.Active
	for name, v := range map[string]string{"sub": r.Subject, "client_id": r.ClientID, "scope": r.Scope,
		"username": r.Username, "token_type": r.TokenType, "iss": r.Issuer} {
		if v != "" {
			m[name] = v
		}
	}
	if len(r.Audience) > 0 {
		aud := make([]any, len(r.Audience))
		for i, a := range r.Audience {
			aud[i] = a
		}
		m["aud"] = aud
	}
	if !r.ExpiresAt.IsZero() {
		m["exp"] = float64(r.ExpiresAt.Unix()) // as encoding/json decodes a number
	}
	r.claims.CompareAndSwap(nil, &m)
	return *r.claims.Load()
}

// Client introspects tokens; safe for concurrent use.
type Client struct {
	opts   Options
	http   *http.Client
	ns     string // hex; separates caches of differently configured clients in Redis
	now    func() time.Time
	flight singleflight.Group
	mem    *memCache // nil without cache; with Redis, used while Redis fails

	redisDownUntil atomic.Int64 // unix nanoseconds
}

// New checks opts and builds a Client; it makes no request.
func New(opts Options) (*Client, error) {
	var errs []error
	if u, err := url.Parse(opts.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("url must be an absolute http(s) URL")) // not shown: it may hold credentials
	}
	if opts.ClientID == "" {
		errs = append(errs, errors.New("client id is required"))
	}
	if opts.ClientSecret == "" {
		errs = append(errs, errors.New("client secret is required"))
	}
	if opts.Timeout < 0 || opts.CacheTTL < 0 || opts.MaxEntries < 0 {
		errs = append(errs, errors.New("timeout, cache ttl and max entries must not be negative"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("introspect: %w", errors.Join(errs...))
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	switch {
	case opts.CacheTTL == 0 || opts.NegativeTTL < 0:
		opts.NegativeTTL = 0
	case opts.NegativeTTL == 0:
		opts.NegativeTTL = 5 * time.Second
	}
	opts.NegativeTTL = min(opts.NegativeTTL, opts.CacheTTL)
	if opts.MaxEntries == 0 {
		opts.MaxEntries = 10000
	}

	if opts.Now == nil {
		opts.Now = time.Now
	}

	// Whatever decides a verdict is in the namespace: two strategies with
	// different servers or checks must never share cached answers.
	ns := sha256.Sum256([]byte(strings.Join([]string{opts.URL, opts.ClientID, opts.Issuer, opts.Audience,
		strconv.FormatBool(opts.IssuerEndpoint)}, "\x00")))
	// Following a redirect would post the token (and, with some clients,
	// our credentials) wherever the redirect points: Harden refuses them.
	c := &Client{opts: opts, http: idp.Harden(opts.HTTPClient), ns: hex.EncodeToString(ns[:8]), now: opts.Now}
	if opts.CacheTTL > 0 {
		c.mem = &memCache{max: opts.MaxEntries, m: make(map[[32]byte]*entry)}
	}
	return c, nil
}

func (c *Client) cached() bool { return c.opts.CacheTTL > 0 }

// Introspect answers the token's introspection result, or a denial
// (errors.Is ErrInactive / ErrInvalid, as a *DeniedError), or a technical
// error. Concurrent calls with the same token share one request.
func (c *Client) Introspect(ctx context.Context, token string) (*Result, error) {
	if !wellFormed(token) {
		return nil, deny(ErrInvalid, strategies.ReasonMalformedToken)
	}
	key := sha256.Sum256([]byte(token))
	if c.cached() {
		e := c.lookup(ctx, key)
		if c.opts.OnCache != nil {
			c.opts.OnCache(e != nil)
		}
		if e != nil {
			return e.answer()
		}
	}
	ch := c.flight.DoChan(string(key[:]), func() (any, error) {
		// The request outlives a caller that gives up: others may share it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
		defer cancel()
		// A flight that finished just before this one began has filled the
		// cache: look again rather than ask twice.
		if c.cached() {
			if e := c.lookup(fctx, key); e != nil {
				return e, nil
			}
		}
		e, err := c.ask(fctx, token)
		if err != nil {
			return nil, err
		}
		c.store(fctx, key, e)
		return e, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*entry).answer()
	}
}

// wellFormed accepts RFC 6750 b64token syntax of a sane length; anything
// else is refused without asking the server.
func wellFormed(tok string) bool {
	if tok == "" || len(tok) > strategies.MaxTokenBytes {
		return false
	}
	i := len(tok)
	for i > 0 && tok[i-1] == '=' {
		i--
	}
	if i == 0 {
		return false
	}
	for _, ch := range []byte(tok[:i]) {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case ch == '-', ch == '.', ch == '_', ch == '~', ch == '+', ch == '/':
		default:
			return false
		}
	}
	return true
}

// entry is a cached verdict: a result, or a denial.
type entry struct {
	Result *Result           `json:"result,omitempty"`
	Denial string            `json:"denial,omitempty"` // "inactive" or "invalid"
	Reason strategies.Reason `json:"reason,omitempty"`
	// Until is when the entry stops being used.
	Until time.Time `json:"until"`
}

func (e *entry) answer() (*Result, error) {
	switch {
	case e.Denial == "inactive":
		return nil, deny(ErrInactive, e.Reason)
	case e.Denial != "" || e.Result == nil:
		return nil, deny(ErrInvalid, e.Reason)
	}
	return e.Result, nil
}

func (c *Client) useRedis(now time.Time) bool {
	return c.opts.Redis != nil && now.UnixNano() >= c.redisDownUntil.Load()
}

func (c *Client) redisFailed(now time.Time) {
	c.redisDownUntil.Store(now.Add(redisBackoff).UnixNano())
}

func (c *Client) lookup(ctx context.Context, key [32]byte) *entry {
	now := c.now()
	if !c.useRedis(now) {
		return c.mem.get(key, now)
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	b, err := c.opts.Redis.Get(rctx, c.redisKey(key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil
	case err != nil:
		if ctx.Err() == nil { // a caller that left says nothing about Redis
			c.redisFailed(now)
		}
		return c.mem.get(key, now)
	}
	var e entry
	if json.Unmarshal(b, &e) != nil || !now.Before(e.Until) {
		return nil
	}
	return &e
}

func (c *Client) store(ctx context.Context, key [32]byte, e *entry) {
	now := c.now()
	ttl := c.opts.NegativeTTL
	if e.Result != nil {
		// Up to a fifth less than CacheTTL, at random: tokens first seen
		// together (a restart) are not all introspected again at once.
		ttl = min(c.opts.CacheTTL-rand.N(c.opts.CacheTTL/5+1), e.Result.ExpiresAt.Sub(now))
	}
	if ttl <= 0 {
		return
	}
	e.Until = now.Add(ttl)
	if c.useRedis(now) {
		b, err := json.Marshal(e)
		if err != nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, redisTimeout)
		defer cancel()
		if err := c.opts.Redis.Set(rctx, c.redisKey(key), b, ttl).Err(); err == nil {
			return
		}
		c.redisFailed(now)
	}
	c.mem.put(key, e, now)
}

func (c *Client) redisKey(key [32]byte) string {
	return redisPrefix + c.ns + ":" + hex.EncodeToString(key[:])
}

// ask sends one introspection request and judges the answer.
func (c *Client) ask(ctx context.Context, token string) (*entry, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 2.3.1: id and secret are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(c.opts.ClientID), url.QueryEscape(c.opts.ClientSecret))
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspection request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspection endpoint answered status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body) // the client caps it
	if err != nil {
		return nil, fmt.Errorf("reading introspection response: %w", err)
	}
	return c.judge(body)
}

// Members of the answer that Result has fields for.
var known = []string{"active", "sub", "client_id", "scope", "username", "token_type", "iss", "aud", "exp"}

// judge turns an introspection answer into a verdict. A malformed answer is
// a technical error: the server, not the token, is at fault.
func (c *Client) judge(body []byte) (*entry, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, errors.New("introspection response is not a JSON object")
	}
	active, ok := m["active"].(bool)
	if !ok {
		return nil, errors.New("introspection response: active is not a boolean")
	}
	if !active {
		return &entry{Denial: "inactive", Reason: strategies.ReasonInactive}, nil
	}
	r := &Result{Active: true}
	for name, dst := range map[string]*string{"sub": &r.Subject, "client_id": &r.ClientID,
		"scope": &r.Scope, "username": &r.Username, "token_type": &r.TokenType, "iss": &r.Issuer} {
		if v, ok := m[name]; ok {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("introspection response: %s is not a string", name)
			}
			*dst = s
		}
	}
	switch aud := m["aud"].(type) {
	case nil:
	case string:
		r.Audience = []string{aud}
	case []any:
		for _, a := range aud {
			s, ok := a.(string)
			if !ok {
				return nil, errors.New("introspection response: aud holds a non-string")
			}
			r.Audience = append(r.Audience, s)
		}
	default:
		return nil, errors.New("introspection response: aud is neither string nor array")
	}
	for k, v := range m {
		if !slices.Contains(known, k) {
			if r.Extra == nil {
				r.Extra = make(map[string]any)
			}
			r.Extra[k] = v
		}
	}

	now := c.now()
	exp, present, err := numericDate(m, "exp")
	switch {
	case err != nil:
		return nil, err
	case !present:
		return invalid(strategies.ReasonMissingClaim), nil
	case !now.Before(exp):
		return invalid(strategies.ReasonExpired), nil
	}
	r.ExpiresAt = exp
	if nbf, present, err := numericDate(m, "nbf"); err != nil {
		return nil, err
	} else if present && nbf.After(now.Add(nbfLeeway)) {
		return invalid(strategies.ReasonNotYetValid), nil
	}
	switch strings.ToLower(r.TokenType) {
	case "", "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token":
	default: // refresh_token, id_token, DPoP (a bound token used as a bearer one), ...
		return invalid(strategies.ReasonWrongTokenType), nil
	}
	if _, bound := m["cnf"]; bound {
		// RFC 8705 / RFC 9449: a sender-constrained token is only good with
		// its proof, which a bearer request does not carry.
		return invalid(strategies.ReasonSenderConstrained), nil
	}
	if _, stated := m["iss"]; c.opts.Issuer != "" && r.Issuer != c.opts.Issuer && (stated || !c.opts.IssuerEndpoint) {
		return invalid(strategies.ReasonWrongIssuer), nil
	}
	if c.opts.Audience != "" && !slices.Contains(r.Audience, c.opts.Audience) {
		return invalid(strategies.ReasonWrongAudience), nil
	}
	return &entry{Result: r}, nil
}

func invalid(reason strategies.Reason) *entry { return &entry{Denial: "invalid", Reason: reason} }

// numericDate reads an RFC 7519 NumericDate member.
func numericDate(m map[string]any, name string) (time.Time, bool, error) {
	v, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, true, fmt.Errorf("introspection response: %s is not a NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}
