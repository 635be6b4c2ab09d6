// Package redisconn turns the configured redis.url into a go-redis client
// tuned for a proxy: short timeouts so a slow or unreachable Redis fails a
// request quickly (the caller fails closed) instead of stalling it.
//
// Accepted URL forms (options are go-redis query parameters, e.g.
// dial_timeout=3s, pool_size=50, skip_verify=true; unknown ones are errors):
//
//	redis://[[user]:password@]host[:port][/db][?option=value...]     one node
//	rediss://...                                                      one node over TLS
//	redis+cluster://[[user]:password@]host[:port][?addr=host2:port...] Redis Cluster (seed nodes)
//	rediss+cluster://...                                              Redis Cluster over TLS
//	redis://host:port?addr=host2:port[&addr=...]                      several addresses: Redis Cluster
//	redis+sentinel://[[user]:password@]sentinel:26379[/db]?master_name=NAME[&addr=sentinel2:26379...]
//	rediss+sentinel://...                                             Sentinel-managed master over TLS
//
// For Sentinel the user and password in the URL authenticate to the master
// and, unless sentinel_username / sentinel_password query parameters are
// given, to the sentinels too (the common setup uses one password for both).
//
// Defaults where the URL sets nothing: dial timeout 2s, read and write
// timeouts 500ms, pool of max(32, 16×GOMAXPROCS) connections with a 1s pool
// timeout, one retry of a failed command and of a failed dial, and commands
// bounded by their context's deadline.
//
// New only builds the client; it does not connect. Callers that must know
// Redis is reachable (readiness) ping it themselves.
//
// Errors never contain the URL's password: the URL is shown redacted.
package redisconn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults applied when the URL does not set the option.
const (
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = 500 * time.Millisecond
	DefaultWriteTimeout = 500 * time.Millisecond
	DefaultPoolTimeout  = time.Second
	defaultMinPoolSize  = 32
	// defaultMaxRetries is one retry: with 500ms read timeouts the go-redis
	// default of 3 would let one request stall for 2s before failing closed.
	defaultMaxRetries = 1
	// defaultDialAttempts is the total number of dial attempts (go-redis's
	// DialerRetries counts attempts; its default of 5 × 2s is far too long).
	defaultDialAttempts = 2
	defaultSentinelPort = "26379"
)

// Query parameters of the sentinel form that go-redis does not know.
const (
	paramSentinelUser = "sentinel_username"
	paramSentinelPass = "sentinel_password"
)

// New returns a client for rawURL (see the package documentation for the
// accepted forms). It does not connect.
func New(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the whole input, password included; say
		// only that it did not parse.
		return nil, errors.New("invalid redis url: cannot be parsed (value withheld, it may hold a password)")
	}
	secrets := urlSecrets(u)
	fail := func(err error) error {
		// Not wrapped with %w on purpose: go-redis error texts may echo parts
		// of the URL, and a wrapped error's text cannot be scrubbed.
		return errors.New("invalid redis url " + redact(u) + ": " + scrub(err.Error(), secrets))
	}

	scheme, mode, _ := strings.Cut(u.Scheme, "+")
	if scheme != "redis" && scheme != "rediss" {
		return nil, fail(fmt.Errorf("scheme %q: want redis, rediss, redis+cluster, redis+sentinel (or rediss+ forms)", u.Scheme))
	}
	if u.Host == "" {
		return nil, fail(errors.New("no host"))
	}
	switch mode {
	case "":
		if u.Query().Has("addr") {
			return newCluster(u, scheme, fail)
		}
		opt, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fail(err)
		}
		applyDefaults(tunables{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout,
			&opt.PoolSize, &opt.MaxRetries, &opt.DialerRetries, &opt.ContextTimeoutEnabled})
		return redis.NewClient(opt), nil
	case "cluster":
		return newCluster(u, scheme, fail)
	case "sentinel":
		return newSentinel(u, scheme, fail)
	default:
		return nil, fail(fmt.Errorf("scheme %q: want redis, rediss, redis+cluster, redis+sentinel (or rediss+ forms)", u.Scheme))
	}
}

func newCluster(u *url.URL, scheme string, fail func(error) error) (redis.UniversalClient, error) {
	v := *u
	v.Scheme = scheme
	if p := strings.Trim(v.Path, "/"); p != "" && p != "0" {
		return nil, fail(errors.New("redis cluster has only database 0"))
	}
	v.Path = ""
	opt, err := redis.ParseClusterURL(v.String())
	if err != nil {
		return nil, fail(err)
	}
	applyDefaults(tunables{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout,
		&opt.PoolSize, &opt.MaxRetries, &opt.DialerRetries, &opt.ContextTimeoutEnabled})
	return redis.NewClusterClient(opt), nil
}

func newSentinel(u *url.URL, scheme string, fail func(error) error) (redis.UniversalClient, error) {
	q := u.Query()
	for _, name := range []string{"username", "password", "sentinel_addr"} {
		if q.Has(name) {
			return nil, fail(fmt.Errorf("query parameter %q is not accepted: put credentials in the URL's user info", name))
		}
	}
	if q.Get("master_name") == "" {
		return nil, fail(errors.New("redis+sentinel needs master_name"))
	}
	user, pass := "", ""
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	sentinelUser, sentinelPass := user, pass
	if q.Has(paramSentinelUser) {
		sentinelUser = q.Get(paramSentinelUser)
	}
	if q.Has(paramSentinelPass) {
		sentinelPass = q.Get(paramSentinelPass)
	}
	q.Del(paramSentinelUser)
	q.Del(paramSentinelPass)

	v := *u
	v.Scheme = scheme
	v.User = nil
	v.RawQuery = q.Encode()
	if v.Port() == "" {
		v.Host = net.JoinHostPort(v.Hostname(), defaultSentinelPort)
	}
	opt, err := redis.ParseFailoverURL(v.String())
	if err != nil {
		return nil, fail(err)
	}
	opt.Username, opt.Password = user, pass
	opt.SentinelUsername, opt.SentinelPassword = sentinelUser, sentinelPass
	applyDefaults(tunables{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout,
		&opt.PoolSize, &opt.MaxRetries, &opt.DialerRetries, &opt.ContextTimeoutEnabled})
	// What redis.NewUniversalClient builds for UniversalOptions with a
	// MasterName; built directly so every parsed option carries over.
	return redis.NewFailoverClient(opt), nil
}

// tunables points at the same-named fields of the three go-redis option types.
type tunables struct {
	dial, read, write, poolTimeout     *time.Duration
	poolSize, maxRetries, dialAttempts *int
	contextTimeout                     *bool
}

// applyDefaults fills the options the URL left at zero. go-redis reads a
// negative duration from the URL as "disabled", so zero means "not given".
func applyDefaults(t tunables) {
	setDur := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	setDur(t.dial, DefaultDialTimeout)
	setDur(t.read, DefaultReadTimeout)
	setDur(t.write, DefaultWriteTimeout)
	setDur(t.poolTimeout, DefaultPoolTimeout)
	if *t.poolSize == 0 {
		// Every request may touch Redis (rate limits, uncached keys), so the
		// pool is larger than go-redis's 10 per CPU.
		*t.poolSize = max(defaultMinPoolSize, 16*runtime.GOMAXPROCS(0))
	}
	if *t.maxRetries == 0 {
		*t.maxRetries = defaultMaxRetries
	}
	if *t.dialAttempts == 0 {
		*t.dialAttempts = defaultDialAttempts
	}
	// A request whose client went away or whose deadline passed should give
	// its connection back rather than wait on Redis.
	*t.contextTimeout = true
}

// urlSecrets lists the secret values found in u: the user-info password and
// any query parameter whose name mentions a password.
func urlSecrets(u *url.URL) []string {
	var out []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
	for name, values := range u.Query() {
		if strings.Contains(strings.ToLower(name), "password") {
			for _, v := range values {
				if v != "" {
					out = append(out, v, url.QueryEscape(v))
				}
			}
		}
	}
	return out
}

// redact renders u with its password and every query value masked: a
// mistyped parameter name (pasword=...) must not reveal its value either.
func redact(u *url.URL) string {
	v := *u
	if q := v.Query(); len(q) > 0 {
		for name := range q {
			q.Set(name, "xxxxx")
		}
		v.RawQuery = q.Encode()
	}
	return v.Redacted()
}

// scrub replaces every secret in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "xxxxx")
	}
	return s
}
