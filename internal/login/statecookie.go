package login

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// stateKeyInfo is the HKDF "info" for the login-state cookie key: a key
// derived for this one purpose, never usable as (or derived from) a token
// signature.
const stateKeyInfo = "authgateway login-state cookie v1"

// maxStateCookie bounds what we try to decrypt.
const maxStateCookie = 4096

// loginState is what travels from /auth/login to /auth/callback in the
// encrypted cookie.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	RD       string `json:"r"`
	Expires  int64  `json:"e"` // Unix seconds
}

var errBadState = errors.New("login state cookie invalid")

// stateCodec seals loginState with AES-256-GCM: confidential (the PKCE
// verifier must not be readable) and authenticated (nothing in it may be
// chosen by the client).
type stateCodec struct {
	aead cipher.AEAD
	aad  []byte
}

// newStateCodec derives the cookie key from secret with HKDF-SHA256. Every
// replica derives the same key from the same secret, so a login may start on
// one and finish on another.
func newStateCodec(secret []byte, cookieName string) (*stateCodec, error) {
	if len(secret) < 32 {
		return nil, errors.New("login state secret shorter than 32 bytes")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, stateKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving login state key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("login state cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("login state cipher: %w", err)
	}
	// The cookie name is authenticated too: a value cannot be replayed
	// under another cookie.
	return &stateCodec{aead: aead, aad: []byte(cookieName)}, nil
}

func (c *stateCodec) seal(s loginState) (string, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encoding login state: %w", err)
	}
	return c.sealBytes(plain, c.aad)
}

// sealBytes encrypts plain under the codec's key with aad authenticated:
// the login state (aad: the cookie name) and the provider's refresh token
// in the session store (aad: providerTokenAAD), never mistaken one for
// the other.
func (c *stateCodec) sealBytes(plain, aad []byte) (string, error) {
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("sealing nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(c.aead.Seal(nonce, nonce, plain, aad)), nil
}

// openBytes decrypts what sealBytes sealed with aad.
func (c *stateCodec) openBytes(v string, aad []byte) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < c.aead.NonceSize()+c.aead.Overhead() {
		return nil, errBadState
	}
	n := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, raw[:n], raw[n:], aad)
	if err != nil {
		return nil, errBadState
	}
	return plain, nil
}

func (c *stateCodec) open(v string) (loginState, error) {
	var s loginState
	if len(v) > maxStateCookie {
		return s, errBadState
	}
	plain, err := c.openBytes(v, c.aad)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(plain, &s); err != nil || s.State == "" || s.Nonce == "" || s.Verifier == "" {
		return loginState{}, errBadState
	}
	return s, nil
}
