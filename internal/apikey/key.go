// Package apikey implements API keys for machines: the key format, the
// stores that hold their SHA-256 hashes (a YAML file or Redis), the Verifier
// that the gateway calls on every request, and the Manager behind the
// `authgateway keys` commands.
//
// A key is `<prefix>_<43 base64url characters of 32 random bytes>`, e.g.
// `pk_live_…`. Only the SHA-256 of the whole key is ever stored; the
// plaintext exists once, when Manager.Create or Manager.Rotate returns it.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

const (
	secretBytes = 32
	// secretChars is the unpadded base64url length of secretBytes.
	secretChars = 43
	// MaxPrefixLen bounds a prefix so Parse can reject long input at once.
	MaxPrefixLen = 32
)

// Verification outcomes. ErrMalformed, ErrUnknown, ErrExpired and ErrRevoked
// mean a bad credential (401); ErrNotFound is a store's "no such record".
// Any other error is technical and must fail closed.
var (
	ErrMalformed = errors.New("malformed api key")
	ErrUnknown   = errors.New("unknown api key")
	ErrExpired   = errors.New("api key expired")
	ErrRevoked   = errors.New("api key revoked")
	ErrNotFound  = errors.New("api key not found")
	ErrExists    = errors.New("api key already exists")
)

var secretEncoding = base64.RawURLEncoding.Strict()

// ValidatePrefix reports whether p can be a key prefix: 1 to MaxPrefixLen
// characters of [A-Za-z0-9_], neither starting nor ending with '_'.
func ValidatePrefix(p string) error {
	if p == "" || len(p) > MaxPrefixLen {
		return fmt.Errorf("api key prefix %q: want 1 to %d characters", p, MaxPrefixLen)
	}
	if p[0] == '_' || p[len(p)-1] == '_' {
		return fmt.Errorf("api key prefix %q: must not start or end with '_'", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("api key prefix %q: only letters, digits and '_' allowed", p)
		}
	}
	return nil
}

// Generate returns a new key `<prefix>_<43 base64url chars>` made of 32
// bytes from crypto/rand.
func Generate(prefix string) (string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return "", err
	}
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return prefix + "_" + secretEncoding.EncodeToString(b[:]), nil
}

// Hash is the hex SHA-256 of the whole key (prefix included): the only form
// in which a key is stored.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Parse checks the format of a presented key and returns which of
// allowedPrefixes it carries. Anything else is ErrMalformed, decided from
// the string alone so that garbage never reaches a store.
//
// Prefixes may themselves contain '_' (pk_live), so the prefix is not found
// by splitting: the key's length fixes where the secret starts, and the part
// before it must be exactly one configured prefix.
func Parse(key string, allowedPrefixes []string) (string, error) {
	if len(key) < 1+1+secretChars || len(key) > MaxPrefixLen+1+secretChars {
		return "", ErrMalformed
	}
	cut := len(key) - secretChars - 1
	if key[cut] != '_' {
		return "", ErrMalformed
	}
	head, secret := key[:cut], key[cut+1:]
	prefix := ""
	for _, p := range allowedPrefixes {
		if p == head {
			prefix = p
			break
		}
	}
	if prefix == "" {
		return "", ErrMalformed
	}
	// The decoder skips '\r' and '\n' even in strict mode, so the alphabet is
	// checked by hand first; decoding then rejects a last character with
	// non-zero padding bits (43 chars carry 258 bits for 256).
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", ErrMalformed
		}
	}
	var b [secretBytes]byte
	if n, err := secretEncoding.Decode(b[:], []byte(secret)); err != nil || n != secretBytes {
		return "", ErrMalformed
	}
	return prefix, nil
}
