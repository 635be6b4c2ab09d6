// Package session holds browser login sessions: refresh-token families with
// rotation and reuse detection, the access-token denylist that logout feeds,
// and single-use markers for login states.
//
// State lives in Redis when a client is given (replicas share it) and in
// memory otherwise (one instance). Either way the denylist is answered from a
// local map, so IsRevoked never waits for a network round trip: with Redis,
// every replica keeps its map current from a pub/sub channel and resyncs it
// from Redis whenever it (re)subscribes.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/pack"
	"github.com/authgateway/authgateway/internal/tokens"
)

// Errors of Refresh. All of them mean "log in again"; none is a technical
// failure.
var (
	// ErrInvalidToken: the refresh token is malformed, badly signed, of the
	// wrong type or expired.
	ErrInvalidToken = errors.New("invalid refresh token")
	// ErrReused: a refresh token that had already been rotated away was
	// presented again. Someone holds a copy: the whole family is revoked.
	ErrReused = errors.New("refresh token reused")
	// ErrRevoked: the session was logged out, revoked after reuse, or has
	// expired from the store.
	ErrRevoked = errors.New("session revoked")
	// ErrTooFrequent: the family already holds MaxLiveAccess unexpired
	// access tokens; refresh again when some have expired.
	ErrTooFrequent = errors.New("refreshing too often")
	// ErrUnavailable: the denylist cannot be trusted to be current (no live
	// subscription for longer than Options.StaleAfter).
	ErrUnavailable = errors.New("revocation list unavailable")
	// ErrExpired: the session reached Options.AbsoluteTTL after its login;
	// the family is ended.
	ErrExpired = errors.New("session reached its absolute lifetime")
	// ErrProviderRefused: at rotation the identity provider refused the
	// session (its refresh token, or userinfo): the family is ended. An
	// Updater returns it (wrapped) for such a refusal.
	ErrProviderRefused = errors.New("identity provider refused the session")
)

// MaxLiveAccess bounds the unexpired access tokens one family may hold. A
// family remembers them so that revoking it denies them all; the bound keeps
// a client that refreshes in a loop from growing that record without limit.
// A browser refreshing every few seconds stays far below it.
const MaxLiveAccess = 256

// Identity is who a session belongs to. It is fixed at login: a refresh
// mints access tokens with the same subject, email and roles.
type Identity struct {
	Subject string   `json:"sub"`
	Email   string   `json:"email,omitempty"`
	Roles   []string `json:"roles,omitempty"`
	// ProviderSession is the provider's session id (the ID token's sid),
	// when it sent one: a back-channel logout may name it.
	ProviderSession string `json:"psid,omitempty"`
	// IDToken is the provider's ID token of the login, kept for the
	// id_token_hint of an RP-initiated logout; never put in a cookie.
	IDToken string `json:"idt,omitempty"`
	// ProviderRefresh is the provider's refresh token, sealed by the login
	// (update_on_refresh); never put in a cookie.
	ProviderRefresh string `json:"prt,omitempty"`
}

// pack copies the identity's strings, and more, into one block and its
// roles into one list (package pack): what a store keeps of thousands of
// sessions is then a few heap objects each for the garbage collector.
func (id *Identity) pack(more ...*string) {
	pack.Into(append([]*string{&id.Subject, &id.Email, &id.ProviderSession, &id.IDToken, &id.ProviderRefresh}, more...), &id.Roles)
}

// Updater re-reads a session's identity from the provider at rotation
// (update_on_refresh). An error matching ErrProviderRefused ends the
// session; any other leaves the identity as it was.
type Updater func(ctx context.Context, id Identity) (Identity, error)

// Info describes one session for an operator: never a token.
type Info struct {
	Family    string
	Subject   string
	Born      time.Time // login; zero if not recorded
	Refreshed time.Time // last rotation; zero if none
	Ends      time.Time // when the store forgets it
	Revoked   bool
}

// index names one of the family indexes: a subject's, or a provider
// session's.
type index struct {
	value    string
	provider bool
}

// Tokens are what a login or a refresh hands to the browser.
type Tokens struct {
	Family        string
	Access        string
	AccessID      string
	AccessExpiry  time.Time
	Refresh       string
	RefreshExpiry time.Time
	// Grace is set by Refresh when the presented token had just been
	// rotated (within Options.ReuseGrace): these are the tokens that
	// rotation handed out, given again.
	Grace bool `json:"-"`
}

// AccessRef names an access token for the denylist: its jti and expiry.
type AccessRef struct {
	ID     string
	Expiry time.Time
}

// Options configure a Manager.
type Options struct {
	// Issuer signs access and refresh tokens; required, with a signing key.
	Issuer *tokens.Issuer
	// Algorithms are the algorithms refresh and access tokens may be signed
	// with (those of tokens.signing_keys). Default: the signing key's.
	Algorithms []string
	// Redis holds shared state; nil keeps everything in this process.
	Redis redis.UniversalClient
	// Logger; nil discards.
	Logger *slog.Logger
	// StaleAfter is how long, with Redis, the denylist may go without a live
	// subscription before IsRevoked fails closed. Default 5s.
	StaleAfter time.Duration
	// ResyncInterval re-reads the whole denylist from Redis, in case a
	// message was lost. Default 30s.
	ResyncInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// ReuseGrace is how long after a rotation the rotated refresh token may
	// be presented again and get the same successor (a second tab, parallel
	// requests at expiry). Later reuse revokes the family. Default 0: any
	// reuse revokes (the config's default is 30s).
	ReuseGrace time.Duration
	// AbsoluteTTL ends a family that long after its login, whatever
	// refreshes happen; tokens minted near the end expire with it. Default
	// 0: no bound but refresh_ttl of inactivity.
	AbsoluteTTL time.Duration
	// DryRun builds the manager for a dry run (explain): with Redis, no
	// subscription and no goroutine; the denylist is read once, by
	// ReadDenylist, and nothing is ever written by the caller's choice.
	DryRun bool
}

// Manager runs sessions. It implements the jwt strategy's Revocations.
type Manager struct {
	iss      *tokens.Issuer
	codec    *tokenCodec
	store    backend
	deny     *Denylist
	watch    *watcher // nil without Redis
	log      *slog.Logger
	now      func() time.Time
	grace    time.Duration
	absolute time.Duration
	update   Updater // nil: identities are fixed at login
	cancel   context.CancelFunc
	done     chan struct{}
}

// backend is where families and single-use markers live.
type backend interface {
	// createFamily stores a new family with one live access token.
	createFamily(ctx context.Context, f *family, ttl time.Duration) error
	// getFamily returns a family; errRevoked if it is unknown or revoked.
	// current: the caller needs the family's current token, read from the
	// store; otherwise a backend may answer from what it cached.
	getFamily(ctx context.Context, id string, current bool) (*family, error)
	// rotate replaces rot.presented with rot.next as the family's current
	// refresh token, records rot.at and keeps rot.successor for the grace.
	// If presented is the token rotated away last, within rot.grace, the
	// kept successor is answered (grace). Otherwise, if presented is not
	// current, the family is revoked and its live access tokens returned
	// with ErrReused. One atomic step per family, on every backend.
	rotate(ctx context.Context, f *family, rot rotation) (rotated, error)
	// setIdentity replaces the identity of a live family.
	setIdentity(ctx context.Context, id string, ident Identity) error
	// families lists the families of an index, revoked ones included,
	// until the store forgets them.
	families(ctx context.Context, ix index) ([]Info, error)
	// revoke marks the family revoked and returns its live access tokens.
	revoke(ctx context.Context, id string) ([]AccessRef, error)
	// deny records revoked access tokens for every replica.
	deny(ctx context.Context, refs []AccessRef) error
	// consumeOnce reports whether key was not consumed before, and marks it.
	consumeOnce(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// rotation is one refresh's change to its family.
type rotation struct {
	presented, next string
	at              AccessRef
	ttl, grace      time.Duration
	// successor is the sealed Tokens of this rotation (sealSuccessor).
	successor []byte
}

// rotated is what rotate answers: the live access tokens of a family it
// revoked for reuse, or the kept successor of a grace hit.
type rotated struct {
	live      []AccessRef
	successor []byte
	grace     bool
}

// family is one login: the chain of refresh tokens rotated from it.
type family struct {
	ID       string
	Identity Identity
	// Born is when the login happened (AbsoluteTTL counts from it); zero
	// for families stored before it was recorded.
	Born time.Time
	// Current is the jti of the only refresh token that may be used next.
	Current string
	Revoked bool
	// Access are the access tokens minted in this family and not yet expired.
	Access []AccessRef
	// storedIdentity is the identity as Redis holds it ("" in memory): a
	// rotation on Redis goes ahead only while it is still what Redis holds.
	storedIdentity string
}

// errStaleFamily: the family was read (or cached) before another replica
// changed its identity; read it again.
var errStaleFamily = errors.New("session identity changed since it was read")

// New builds a Manager. With Redis it starts a goroutine that keeps the
// denylist current until Close.
func New(o Options) (*Manager, error) {
	if o.Issuer == nil || o.Issuer.Keys == nil || o.Issuer.Keys.Signer() == nil {
		return nil, errors.New("sessions need a signing key (tokens.signing_keys)")
	}
	if o.Issuer.Issuer == "" || o.Issuer.Audience == "" {
		return nil, errors.New("sessions need tokens.issuer and tokens.audience")
	}
	if o.Issuer.AccessTTL <= 0 || o.Issuer.RefreshTTL <= 0 {
		return nil, errors.New("sessions need positive tokens.access_ttl and tokens.refresh_ttl")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 5 * time.Second
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = 30 * time.Second
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = []string{o.Issuer.Keys.Signer().Alg}
	}
	m := &Manager{
		iss:      o.Issuer,
		codec:    newTokenCodec(o.Issuer, o.Algorithms, o.Now),
		log:      o.Logger.With("component", "session"),
		now:      o.Now,
		grace:    max(o.ReuseGrace, 0),
		absolute: max(o.AbsoluteTTL, 0),
		done:     make(chan struct{}),
	}
	if o.Redis == nil {
		m.deny = newDenylist(o.Now, 0)
		m.store = newMemoryBackend(o.Now)
		close(m.done)
		return m, nil
	}
	m.deny = newDenylist(o.Now, o.StaleAfter)
	rb := newRedisBackend(o.Redis, o.Now)
	m.store = rb
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.watch = &watcher{rb: rb, deny: m.deny, log: m.log, now: o.Now, resync: o.ResyncInterval}
	if o.DryRun {
		close(m.done)
		return m, nil
	}
	go func() {
		defer close(m.done)
		m.watch.run(ctx)
	}()
	return m, nil
}

// ReadDenylist reads the revoked tokens from Redis once (a read, no
// subscription): for a dry run, which keeps no watcher. If Redis cannot be
// read, the denylist is stale at once: IsRevoked fails closed, as a
// gateway's does when it cannot know.
func (m *Manager) ReadDenylist(ctx context.Context) error {
	if m.watch == nil {
		return nil
	}
	if err := m.watch.load(ctx); err != nil {
		m.deny.downSince.Store(1) // down since long before the grace period
		return err
	}
	return nil
}

// WithIssuer returns a view of m that mints and reads tokens with iss and
// its algorithms algs (a reloaded config's signing keys), over m's
// sessions, denylist and subscription. A view is not closed; m is.
func (m *Manager) WithIssuer(iss *tokens.Issuer, algs []string) *Manager {
	if len(algs) == 0 {
		algs = []string{iss.Keys.Signer().Alg}
	}
	v := *m
	v.iss, v.codec = iss, newTokenCodec(iss, algs, m.now)
	v.cancel, v.done = nil, make(chan struct{})
	close(v.done) // Close on a view returns at once
	return &v
}

// WithLimits returns a view of m with another ReuseGrace and AbsoluteTTL
// (a reloaded config's), over m's sessions, like WithIssuer.
func (m *Manager) WithLimits(grace, absolute time.Duration) *Manager {
	v := *m
	v.grace, v.absolute = max(grace, 0), max(absolute, 0)
	v.cancel, v.done = nil, make(chan struct{})
	close(v.done)
	return &v
}

// WithUpdater returns a view of m that re-reads identities with u at
// rotation, like WithIssuer.
func (m *Manager) WithUpdater(u Updater) *Manager {
	v := *m
	v.update = u
	v.cancel, v.done = nil, make(chan struct{})
	close(v.done)
	return &v
}

// Close stops the denylist subscription (idempotent).
func (m *Manager) Close() {
	if m.cancel != nil {
		m.cancel()
	}
	<-m.done
}

// IsRevoked implements the jwt strategy's Revocations: a map lookup.
func (m *Manager) IsRevoked(ctx context.Context, jti string) (bool, error) {
	return m.deny.IsRevoked(ctx, jti)
}

// Start opens a new session for id: a new family, an access token and the
// family's first refresh token.
func (m *Manager) Start(ctx context.Context, id Identity) (*Tokens, error) {
	if id.Subject == "" {
		return nil, errors.New("starting session: empty subject")
	}
	fam := tokens.NewID()
	born := m.now()
	t, err := m.mint(fam, id, m.lifetime(born, born))
	if err != nil {
		return nil, err
	}
	f := &family{ID: fam, Identity: id, Born: born, Current: t.refreshID, Access: []AccessRef{{t.AccessID, t.AccessExpiry}}}
	if err := m.store.createFamily(ctx, f, m.lifetime(born, born)+storeSlack); err != nil {
		return nil, fmt.Errorf("storing session: %w", err)
	}
	return &t.Tokens, nil
}

// Refresh rotates a refresh token: it returns a new access token and a new
// refresh token, and the presented one can never be used again. Presented
// again within ReuseGrace of its rotation it gets the same tokens again
// (Tokens.Grace); presented later, the whole family is revoked (ErrReused):
// the thief and the rightful holder both have to log in again. Errors
// matching ErrInvalidToken, ErrReused, ErrRevoked or ErrExpired are the
// client's; others are technical.
func (m *Manager) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	c, err := m.codec.parse(ctx, refreshToken, kindRefresh)
	if err != nil {
		return nil, err
	}
	// Without an Updater the family may come from the backend's cache (one
	// round trip to Redis instead of two); the rotation refuses it if the
	// identity changed since, and then it is read again.
	t, err := m.refresh(ctx, refreshToken, c, m.update != nil)
	if errors.Is(err, errStaleFamily) {
		t, err = m.refresh(ctx, refreshToken, c, true)
	}
	return t, err
}

// refresh is Refresh of the parsed token c; current: read the family from
// the store, not a cache.
func (m *Manager) refresh(ctx context.Context, refreshToken string, c *claims, current bool) (*Tokens, error) {
	f, err := m.store.getFamily(ctx, c.family, current)
	if err != nil {
		return nil, err
	}
	if f.Identity.Subject != c.subject {
		return nil, fmt.Errorf("%w: subject does not match its session", ErrInvalidToken)
	}
	now := m.now()
	ttl := m.lifetime(f.Born, now)
	if ttl <= 0 {
		if err := m.end(ctx, c.family); err != nil {
			return nil, err
		}
		return nil, ErrExpired
	}
	if err := m.reread(ctx, f, c.id); err != nil {
		return nil, err
	}
	t, err := m.mint(c.family, f.Identity, ttl)
	if err != nil {
		return nil, err
	}
	rot := rotation{presented: c.id, next: t.refreshID, at: AccessRef{t.AccessID, t.AccessExpiry}, ttl: ttl + storeSlack, grace: m.grace}
	if m.grace > 0 {
		if rot.successor, err = sealSuccessor(refreshToken, &t.Tokens); err != nil {
			return nil, err
		}
	}
	res, err := m.store.rotate(ctx, f, rot)
	switch {
	case errors.Is(err, ErrReused):
		m.log.LogAttrs(ctx, slog.LevelWarn, "refresh token reuse: session revoked",
			slog.String("reason", "refresh_reuse"), slog.String("subject", f.Identity.Subject), slog.String("family", c.family))
		if derr := m.denyAll(ctx, res.live); derr != nil {
			return nil, fmt.Errorf("revoking reused session: %w", derr)
		}
		return nil, err
	case err != nil:
		return nil, err
	case res.grace:
		// Another request rotated this token a moment ago: its tokens,
		// which only a holder of the presented token can open.
		succ, err := openSuccessor(refreshToken, res.successor)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRevoked, err)
		}
		succ.Grace = true
		return succ, nil
	}
	return &t.Tokens, nil
}

// storeSlack keeps a family in the store a little longer than its refresh
// token lives, beyond the codec's leeway, so that a refresh at the very end
// is refused as what it is (ErrExpired) rather than as an unknown family.
const storeSlack = time.Minute

// reread asks the Updater for f's identity when presented is f's current
// refresh token, once per token (a marker in the store: parallel requests
// with the token do not all ask the provider, whose refresh tokens rotate
// too). A refusal ends the family; a technical failure keeps the identity.
func (m *Manager) reread(ctx context.Context, f *family, presented string) error {
	if m.update == nil || f.Current != presented {
		return nil
	}
	first, err := m.store.consumeOnce(ctx, "upd:"+f.ID+":"+presented, time.Minute)
	if err != nil || !first {
		return err
	}
	ident, err := m.update(ctx, f.Identity)
	if err == nil && ident.Subject != f.Identity.Subject {
		err = fmt.Errorf("%w: the provider answered for another subject", ErrProviderRefused)
	}
	switch {
	case errors.Is(err, ErrProviderRefused):
		// Ended, not just refused once: the marker above is consumed, so
		// the next request with this token would not ask again and would
		// rotate the session the provider disowned.
		if eerr := m.end(ctx, f.ID); eerr != nil {
			return eerr
		}
		return err
	case err != nil:
		m.log.LogAttrs(ctx, slog.LevelWarn, "re-reading the identity at the provider failed; kept as it was",
			slog.String("subject", f.Identity.Subject), slog.String("error", err.Error()))
		return nil
	}
	if err := m.store.setIdentity(ctx, f.ID, ident); err != nil {
		return fmt.Errorf("storing the re-read identity: %w", err)
	}
	f.Identity = ident
	// Rotated from the identity just stored: nothing older to compare with.
	f.storedIdentity = ""
	return nil
}

// lifetime is how long tokens minted at now in a family born at born may
// live: refresh_ttl, cut to what remains of AbsoluteTTL (≤ 0: over).
func (m *Manager) lifetime(born, now time.Time) time.Duration {
	ttl := m.iss.RefreshTTL
	if m.absolute > 0 && !born.IsZero() {
		ttl = min(ttl, born.Add(m.absolute).Sub(now))
	}
	return ttl
}

// end revokes family id and denies its live access tokens.
func (m *Manager) end(ctx context.Context, id string) error {
	live, err := m.store.revoke(ctx, id)
	if err != nil {
		return fmt.Errorf("revoking session: %w", err)
	}
	return m.denyAll(ctx, live)
}

// Logout ends the session the tokens belong to: the family (from the refresh
// token's fam or the access token's sid) is revoked and every access token
// minted in it, the presented one included, is denied until it expires.
// Tokens that do not verify are ignored: there is nothing to revoke.
func (m *Manager) Logout(ctx context.Context, accessToken, refreshToken string) error {
	_, err := m.LogoutIdentity(ctx, accessToken, refreshToken)
	return err
}

// LogoutIdentity is Logout that also answers the identity of the session it
// ended (nil if none was found): its ID token is the hint of a logout at
// the provider.
func (m *Manager) LogoutIdentity(ctx context.Context, accessToken, refreshToken string) (*Identity, error) {
	var refs []AccessRef
	fam := ""
	if accessToken != "" {
		if c, err := m.codec.parse(ctx, accessToken, kindAccess); err == nil {
			refs = append(refs, AccessRef{c.id, c.expiry})
			fam = c.family
		}
	}
	if refreshToken != "" {
		if c, err := m.codec.parse(ctx, refreshToken, kindRefresh); err == nil {
			fam = c.family
		}
	}
	var id *Identity
	if fam != "" {
		if f, err := m.store.getFamily(ctx, fam, true); err == nil {
			id = &f.Identity
		}
		live, err := m.store.revoke(ctx, fam)
		if err != nil {
			// Deny what we know before reporting the failure.
			_ = m.denyAll(ctx, refs)
			return id, fmt.Errorf("revoking session: %w", err)
		}
		refs = append(refs, live...)
	}
	return id, m.denyAll(ctx, refs)
}

// List answers the sessions of subject, revoked ones included until the
// store forgets them.
func (m *Manager) List(ctx context.Context, subject string) ([]Info, error) {
	return m.store.families(ctx, index{value: subject})
}

// RevokeSubject ends every session of subject (an operator's revocation)
// and answers how many were live.
func (m *Manager) RevokeSubject(ctx context.Context, subject string) (int, error) {
	return m.revokeIndex(ctx, index{value: subject})
}

// RevokeProviderSession ends every session opened by a login in the
// provider's session sid (a back-channel logout) and answers how many
// were live.
func (m *Manager) RevokeProviderSession(ctx context.Context, sid string) (int, error) {
	return m.revokeIndex(ctx, index{value: sid, provider: true})
}

func (m *Manager) revokeIndex(ctx context.Context, ix index) (int, error) {
	if ix.value == "" {
		return 0, errors.New("revoking sessions: empty subject or session id")
	}
	infos, err := m.store.families(ctx, ix)
	if err != nil {
		return 0, fmt.Errorf("listing sessions: %w", err)
	}
	n := 0
	for _, in := range infos {
		if in.Revoked {
			continue
		}
		if err := m.end(ctx, in.Family); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ConsumeOnce reports whether key is used for the first time, and marks it
// used for ttl (login states: a replayed callback is refused).
func (m *Manager) ConsumeOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		ttl = time.Second
	}
	return m.store.consumeOnce(ctx, key, ttl)
}

// denyAll adds refs to the local map at once (this replica refuses them
// even if Redis is failing) and then to the shared store.
func (m *Manager) denyAll(ctx context.Context, refs []AccessRef) error {
	now := m.now()
	live := refs[:0:0]
	for _, r := range refs {
		if r.ID != "" && r.Expiry.After(now) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return nil
	}
	m.deny.add(live)
	if err := m.store.deny(ctx, live); err != nil {
		return fmt.Errorf("publishing revocation: %w", err)
	}
	return nil
}

type minted struct {
	Tokens
	refreshID string
}

// mint signs an access and a refresh token of family fam, neither living
// longer than ttl (nor than its configured lifetime).
func (m *Manager) mint(fam string, id Identity, ttl time.Duration) (*minted, error) {
	// Whole seconds, at least one: tokens carry times in seconds.
	ttl = max(ttl.Truncate(time.Second), time.Second)
	access, ajti, aexp, err := m.iss.Access(tokens.AccessClaims{
		Subject: id.Subject, Email: id.Email, Roles: id.Roles, SessionID: fam, TTL: ttl,
	})
	if err != nil {
		return nil, fmt.Errorf("minting access token: %w", err)
	}
	refresh, rjti, rexp, err := m.codec.mintRefresh(id.Subject, fam, ttl)
	if err != nil {
		return nil, err
	}
	return &minted{
		Tokens: Tokens{Family: fam, Access: access, AccessID: ajti, AccessExpiry: aexp,
			Refresh: refresh, RefreshExpiry: rexp},
		refreshID: rjti,
	}, nil
}
