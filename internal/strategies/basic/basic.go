// Package basic is the basic strategy: HTTP Basic authentication against
// an Apache htpasswd file of bcrypt hashes, for the scripts, cron jobs and
// monitoring that can send nothing else.
//
// bcrypt is slow on purpose, so verified credentials are cached: keyed by
// an HMAC of user and password under a random key of the strategy's own
// (the password is never stored), and tied to the hash they were verified
// against, so a user removed from the file, or whose hash changed, is
// refused on the next request. The file is checked with one stat per
// request (the api key file store's check) and parsed again when it moved.
//
// Unknown users cost what known ones do: on a cache miss their password is
// checked against a dummy hash of the file's cost, so timing tells nothing
// about who exists. bcrypt work is bounded (Options.Slots at once, each
// request waiting at most Options.Wait for one): a flood of wrong
// passwords from many addresses slows uncached logins to 503s but cannot
// take every core; cached credentials never wait. Each address's wrong
// passwords are bounded before that by rate_limits.auth_failures.
package basic

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/filestamp"
	"github.com/authgateway/authgateway/internal/strategies"
)

// maxPassword is the longest password bcrypt reads whole: it ignores what
// follows byte 72, so a longer one is refused rather than half-checked
// (`authgateway htpasswd` refuses to hash one).
const maxPassword = 72

// maxCached bounds the cache of verified credentials: only correct
// passwords enter it, so its size follows the users, not an attacker.
const maxCached = 10000

// Options tune the bound on bcrypt work; zero values take the defaults.
type Options struct {
	// Slots is how many bcrypt checks run at once. Default: half the
	// cores (GOMAXPROCS), at least 1: the rest keep serving.
	Slots int
	// Wait is how long a request waits for a slot before it is answered
	// 503 (strategy_error). Default 2s.
	Wait time.Duration
}

// Strategy authenticates HTTP Basic credentials; safe for concurrent use.
type Strategy struct {
	file      string
	challenge string
	roles     []string
	userRoles map[string][]string // roles plus the user's own, by user
	log       *slog.Logger
	onCache   func(hit bool)

	cur    atomic.Pointer[version]
	loadMu sync.Mutex // one re-read at a time

	key   [32]byte // HMAC key of the cache; random, never leaves the process
	mu    sync.RWMutex
	cache map[[32]byte]cached

	dummyMu sync.Mutex
	dummies map[int][]byte // dummy hashes by cost

	slots chan struct{}
	wait  time.Duration
}

// version is one version of the file as read: its users, or why it
// could not be used (the strategy then fails closed).
type version struct {
	stamp filestamp.Stamp
	users *users
	err   error
}

// cached is a verified credential: who, and the hash it was verified
// against (a changed hash is a changed password).
type cached struct {
	user, hash string
}

// New builds the basic strategy named name; the htpasswd file is read and
// parsed here, and any line that is not a bcrypt hash is an error naming
// the file and line.
func New(name string, sc *config.Strategy, deps strategies.Deps) (strategies.Strategy, error) {
	return NewWithOptions(name, sc, deps, Options{})
}

// NewWithOptions is New with the bound on bcrypt work given.
func NewWithOptions(name string, sc *config.Strategy, deps strategies.Deps, o Options) (*Strategy, error) {
	if sc.HtpasswdFile == "" {
		return nil, errors.New("htpasswd_file is required")
	}
	file, err := filepath.Abs(sc.HtpasswdFile)
	if err != nil {
		return nil, fmt.Errorf("htpasswd_file: %w", err)
	}
	if o.Slots <= 0 {
		o.Slots = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if o.Wait <= 0 {
		o.Wait = 2 * time.Second
	}
	s := &Strategy{
		file:      file,
		challenge: `Basic realm="` + sc.Realm + `"`,
		roles:     sc.Roles,
		userRoles: map[string][]string{},
		log:       deps.Log("basic", name),
		onCache:   deps.CacheHook("basic"),
		cache:     map[[32]byte]cached{},
		dummies:   map[int][]byte{},
		slots:     make(chan struct{}, o.Slots),
		wait:      o.Wait,
	}
	for user, extra := range sc.UserRoles {
		s.userRoles[user] = append(slices.Clone(sc.Roles), extra...)
	}
	if _, err := io.ReadFull(rand.Reader, s.key[:]); err != nil {
		return nil, fmt.Errorf("making the cache key: %w", err)
	}
	v := s.read()
	if v.err != nil {
		return nil, v.err
	}
	if v.stamp == (filestamp.Stamp{}) {
		return nil, fmt.Errorf("htpasswd_file: no such file: %s", file)
	}
	s.cur.Store(v)
	if !deps.DryRun {
		// Made now, so that the first unknown user does not pay for it
		// (a first request slower than the others would tell).
		if _, err := s.dummy(v.users.maxCost); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// read reads and parses the file.
func (s *Strategy) read() *version {
	f, err := os.Open(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		// A file removed while serving: nobody is let in.
		return &version{users: &users{hashes: map[string]string{}, maxCost: bcrypt.DefaultCost}}
	}
	if err != nil {
		return &version{err: fmt.Errorf("reading htpasswd file: %w", err)}
	}
	defer f.Close()
	// The stamp comes from the open file: it describes the bytes read even
	// if the path is replaced meanwhile.
	fi, err := f.Stat()
	if err != nil {
		return &version{err: fmt.Errorf("reading htpasswd file: %w", err)}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	switch {
	case err != nil:
		return &version{stamp: filestamp.Of(fi), err: fmt.Errorf("reading htpasswd file: %w", err)}
	case len(data) > maxFileSize:
		return &version{stamp: filestamp.Of(fi), err: fmt.Errorf("htpasswd file %s is larger than %d bytes", s.file, maxFileSize)}
	}
	u, err := parseHtpasswd(s.file, data)
	if err != nil {
		return &version{stamp: filestamp.Of(fi), err: err}
	}
	return &version{stamp: filestamp.Of(fi), users: u}
}

// current returns the file's users as they are on disk now: one stat, and
// a re-read when the file moved. A file that no longer parses fails closed
// (an error every request, logged once per version) rather than keep
// users the operator may have just removed.
func (s *Strategy) current() (*users, error) {
	var stamp filestamp.Stamp // zero: missing
	if fi, err := os.Stat(s.file); err == nil {
		stamp = filestamp.Of(fi)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading htpasswd file: %w", err)
	}
	v := s.cur.Load()
	if v.stamp != stamp {
		s.loadMu.Lock()
		if v = s.cur.Load(); v.stamp != stamp {
			v = s.read()
			s.cur.Store(v)
			if v.err != nil {
				s.log.Error("htpasswd file refused: every basic credential fails until it is fixed", "error", v.err)
			} else {
				s.log.Info("htpasswd file read again", "users", len(v.users.hashes))
			}
		}
		s.loadMu.Unlock()
	}
	if v.err != nil {
		return nil, v.err
	}
	return v.users, nil
}

// Challenge is the WWW-Authenticate challenge for a 401 (proxy.Challenger).
func (s *Strategy) Challenge() string { return s.challenge }

// CredentialHeaders are removed before forwarding (proxy.CredentialCarrier).
func (s *Strategy) CredentialHeaders() []string { return []string{"Authorization"} }

// CredentialCookie implements proxy.CredentialCarrier.
func (s *Strategy) CredentialCookie() string { return "" }

// Authenticate implements strategies.Strategy.
func (s *Strategy) Authenticate(ctx context.Context, r *http.Request) (*strategies.Identity, error) {
	user, pass, err := credentials(r)
	if err != nil {
		return nil, err
	}
	us, err := s.current()
	if err != nil {
		return nil, err
	}
	hash, known := us.hashes[user]
	key := s.cacheKey(user, pass)
	if known && s.cachedFor(key, user, hash) {
		return s.identity(user), nil
	}
	if len(pass) > maxPassword {
		// Refused for every user alike, before any lookup shows.
		return nil, strategies.Invalid(strategies.ReasonWrongPassword, nil)
	}
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-s.slots }()
	if !known {
		dummy, err := s.dummy(us.maxCost)
		if err != nil {
			return nil, err
		}
		_ = bcrypt.CompareHashAndPassword(dummy, []byte(pass))
		return nil, strategies.Invalid(strategies.ReasonUnknownUser, nil)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) != nil {
		return nil, strategies.Invalid(strategies.ReasonWrongPassword, nil)
	}
	s.remember(key, user, hash)
	return s.identity(user), nil
}

func (s *Strategy) identity(user string) *strategies.Identity {
	roles, ok := s.userRoles[user]
	if !ok {
		roles = s.roles
	}
	return &strategies.Identity{Subject: user, Roles: roles}
}

// credentials reads "Authorization: Basic base64(user:password)", the
// scheme in any case. No such header: not this strategy's credential. A
// Basic header that is repeated, empty, not base64 or without a colon is
// an invalid credential (401), never an error.
func credentials(r *http.Request) (user, pass string, err error) {
	vals := r.Header["Authorization"]
	if !slices.ContainsFunc(vals, isBasic) {
		return "", "", strategies.ErrNoCredentials
	}
	malformed := strategies.Invalid(strategies.ReasonMalformedCredentials, nil)
	if len(vals) != 1 {
		return "", "", malformed
	}
	tok := strings.TrimSpace(vals[0][len("basic"):])
	if tok == "" || len(tok) > strategies.MaxTokenBytes {
		return "", "", malformed
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return "", "", malformed
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" {
		return "", "", malformed
	}
	return user, pass, nil
}

// isBasic reports whether an Authorization value is of the Basic scheme.
func isBasic(v string) bool {
	const scheme = "basic"
	return len(v) >= len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) &&
		(len(v) == len(scheme) || v[len(scheme)] == ' ' || v[len(scheme)] == '\t')
}

// cacheKey is HMAC-SHA256(user, password) under the strategy's key; the
// user's length comes first so that no two pairs share an input.
func (s *Strategy) cacheKey(user, pass string) [32]byte {
	m := hmac.New(sha256.New, s.key[:])
	m.Write(binary.AppendUvarint(nil, uint64(len(user))))
	m.Write([]byte(user))
	m.Write([]byte(pass))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// cachedFor reports whether key was verified for user against hash, the
// user's hash in the file now.
func (s *Strategy) cachedFor(key [32]byte, user, hash string) bool {
	s.mu.RLock()
	c, ok := s.cache[key]
	s.mu.RUnlock()
	hit := ok && c.user == user && c.hash == hash
	if s.onCache != nil {
		s.onCache(hit)
	}
	return hit
}

func (s *Strategy) remember(key [32]byte, user, hash string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= maxCached {
		for k := range s.cache { // full: drop one, any one
			delete(s.cache, k)
			break
		}
	}
	s.cache[key] = cached{user: user, hash: hash}
}

// acquire takes a bcrypt slot, waiting at most s.wait.
func (s *Strategy) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a bcrypt slot: %w", ctx.Err())
	case <-t.C:
		return fmt.Errorf("every bcrypt slot busy for %s: too many uncached basic credentials at once", s.wait)
	}
}

// dummy returns a hash of a random password at cost: what an unknown
// user's password is checked against, made once per cost.
func (s *Strategy) dummy(cost int) ([]byte, error) {
	s.dummyMu.Lock()
	defer s.dummyMu.Unlock()
	if h, ok := s.dummies[cost]; ok {
		return h, nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	if err != nil {
		return nil, fmt.Errorf("making the dummy hash: %w", err)
	}
	s.dummies[cost] = h
	return h, nil
}

var _ strategies.Strategy = (*Strategy)(nil)
