// Package audit writes the audit log: a separate JSON-lines stream of
// security events (authentication successes and failures, rate limiting, key
// lifecycle, login, logout, refresh-token reuse). It never holds a credential:
// events carry ids (request id, key id, token id), never keys or tokens.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event names.
const (
	AuthSuccess     = "auth.success"
	AuthFailure     = "auth.failure"
	AuthRateLimited = "auth.rate_limited"
	RequestRefused  = "request.refused"
	KeyCreated      = "key.created"
	KeyRotated      = "key.rotated"
	KeyRevoked      = "key.revoked"
	KeyMigrated     = "key.migrated"
	Login           = "login"
	LoginFailure    = "login.failure"
	Logout          = "logout"
	RefreshRotated  = "refresh.rotated"
	RefreshReuse    = "refresh.reuse_detected"
	// RefreshGrace: a refresh token presented again within reuse_grace got
	// the successor its rotation had handed out.
	RefreshGrace = "refresh.grace"
	// SessionExpired: a session reached sessions.absolute_ttl.
	SessionExpired = "session.absolute_expiry"
	// SessionProviderRefused: at rotation the provider refused the session
	// (update_on_refresh): it is ended.
	SessionProviderRefused = "session.provider_refused"
	// SessionsRevoked: an operator ended every session of a subject.
	SessionsRevoked = "sessions.revoked"
	// ProviderLogout: a logout went on to the provider (RP-initiated).
	ProviderLogout = "logout.provider"
	// BackchannelLogout: the provider ended sessions (back-channel logout).
	BackchannelLogout = "logout.backchannel"
	ConfigReloaded    = "config.reloaded"
	ConfigReloadFail  = "config.reload_failed"
)

// Event is one audit record.
type Event struct {
	Time      time.Time `json:"time"`
	Event     string    `json:"event"`
	Route     string    `json:"route,omitempty"`
	Method    string    `json:"method,omitempty"`
	Path      string    `json:"path,omitempty"`
	ClientIP  string    `json:"client_ip,omitempty"`
	Strategy  string    `json:"strategy,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	KeyID     string    `json:"key_id,omitempty"`
	TokenID   string    `json:"token_id,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	Status    int       `json:"status,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// Log is an audit log. A nil *Log discards events, so callers need no checks.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
}

// Open opens the audit output: "" = disabled (nil Log), "stdout", "stderr",
// or a file path, appended to and created with mode 0600.
func Open(output string) (*Log, error) {
	switch output {
	case "":
		return nil, nil
	case "stdout":
		return &Log{w: os.Stdout}, nil
	case "stderr":
		return &Log{w: os.Stderr}, nil
	}
	f, err := os.OpenFile(output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	return &Log{w: f, closer: f}, nil
}

// New writes to w (tests).
func New(w io.Writer) *Log { return &Log{w: w} }

// Write records one event, stamping the time if unset. Each event is one
// write of one line, so concurrent writers (the gateway and a `keys`
// command appending to the same file) do not interleave within a line.
func (l *Log) Write(ev Event) {
	if l == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
}

// Close closes a file output.
func (l *Log) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}
