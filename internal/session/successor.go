package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
)

// The successor of a rotated refresh token is kept with its family for
// reuse_grace, so that a request that presents the same token again (a
// second tab, parallel requests at expiry) gets the same tokens instead of
// revoking the family. It is sealed with a key derived from the presented
// token itself: only a holder of that token can open it, and whoever reads
// the session store learns no usable token from it.
const successorInfo = "authgateway session successor v1"

// sealSuccessor encrypts t under a key derived from the presented refresh
// token (AES-256-GCM, random nonce).
func sealSuccessor(presented string, t *Tokens) ([]byte, error) {
	aead, err := successorAEAD(presented)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encoding successor: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("successor nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, nil), nil
}

// openSuccessor decrypts what sealSuccessor sealed for presented.
func openSuccessor(presented string, sealed []byte) (*Tokens, error) {
	aead, err := successorAEAD(presented)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("successor record too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return nil, fmt.Errorf("opening successor: %w", err)
	}
	var t Tokens
	if err := json.Unmarshal(plain, &t); err != nil || t.Access == "" || t.Refresh == "" {
		return nil, errors.New("successor record unreadable")
	}
	return &t, nil
}

func successorAEAD(presented string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(presented), nil, successorInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving successor key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
