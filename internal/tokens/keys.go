// Package tokens holds the gateway's own signing keys and mints the tokens the
// gateway issues (access tokens for `authgateway token` and login sessions,
// refresh tokens), and publishes the public keys as a JWKS.
package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authgateway/authgateway/internal/config"
)

// ErrUnknownKey means no key with that kid (for that algorithm) is configured.
var ErrUnknownKey = errors.New("unknown signing key")

// Key is one signing/verification key.
type Key struct {
	Kid    string
	Alg    string
	method jwt.SigningMethod
	sign   any // []byte, or a crypto.Signer; nil for verify-only keys
	verify any // []byte, or a public key
}

// KeySet is the configured keys: the first signs, all verify. It does not
// change: a reload builds a new one (with its config generation).
type KeySet struct {
	cur *keyData
}

type keyData struct {
	keys  []*Key
	byKid map[string]*Key
}

// LoadKeySet builds the key set from tokens.signing_keys: HMAC secrets, and
// the PEM keys config.LoadSecrets read from their files (KeyPEM).
// Errors name the offending key by its position.
func LoadKeySet(cfgKeys []config.SigningKey) (*KeySet, error) {
	d := &keyData{byKid: make(map[string]*Key, len(cfgKeys))}
	for i, ck := range cfgKeys {
		k, err := loadKey(ck)
		if err != nil {
			return nil, fmt.Errorf("tokens.signing_keys[%d] (kid %q): %w", i, ck.Kid, err)
		}
		d.keys = append(d.keys, k)
		d.byKid[k.Kid] = k
	}
	ks := &KeySet{}
	ks.cur = d
	return ks, nil
}

func loadKey(ck config.SigningKey) (*Key, error) {
	m := jwt.GetSigningMethod(ck.Algorithm)
	if m == nil {
		return nil, fmt.Errorf("unknown algorithm %q", ck.Algorithm)
	}
	k := &Key{Kid: ck.Kid, Alg: ck.Algorithm, method: m}
	if strings.HasPrefix(ck.Algorithm, "HS") {
		if len(ck.Secret) < config.MinHMACSecret {
			return nil, fmt.Errorf("HMAC secret shorter than %d bytes", config.MinHMACSecret)
		}
		k.sign, k.verify = []byte(ck.Secret), []byte(ck.Secret)
		return k, nil
	}
	if ck.PrivateKeyFile != "" {
		priv, err := parsePrivateKey(ck.KeyPEM, ck.PrivateKeyFile)
		if err != nil {
			return nil, err
		}
		k.sign, k.verify = priv, priv.Public()
	} else {
		pub, err := parsePublicKey(ck.KeyPEM, ck.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		k.verify = pub
	}
	if err := checkKeyType(ck.Algorithm, k.verify); err != nil {
		return nil, err
	}
	return k, nil
}

// checkKeyType refuses a key whose type does not fit the algorithm, so a
// config mistake cannot produce a key that verifies under another family.
func checkKeyType(alg string, pub any) error {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS") {
			if p.N.BitLen() < 2048 {
				return fmt.Errorf("RSA key is %d bits; at least 2048 are required", p.N.BitLen())
			}
			return nil
		}
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want != nil {
			if p.Curve != want {
				return fmt.Errorf("%s needs curve %s, key is %s", alg, want.Params().Name, p.Curve.Params().Name)
			}
			return nil
		}
	case ed25519.PublicKey:
		if alg == "EdDSA" {
			return nil
		}
	}
	return fmt.Errorf("key type %T does not fit algorithm %s", pub, alg)
}

// decodePEM decodes the first PEM block of data, read from file.
func decodePEM(data []byte, file string) (*pem.Block, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("key file %s holds no PEM block", file)
	}
	return block, nil
}

func parsePrivateKey(data []byte, file string) (crypto.Signer, error) {
	block, err := decodePEM(data, file)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key in %s: %w", file, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T in %s", key, file)
	}
	return s, nil
}

func parsePublicKey(data []byte, file string) (any, error) {
	block, err := decodePEM(data, file)
	if err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing public key in %s: %w", file, err)
	}
	return pub, nil
}

// Key returns the verification key for kid if its algorithm is alg. An empty
// kid is accepted only when the set holds exactly one key, so that rotation
// never has to guess. It implements the jwt strategy's key source.
func (s *KeySet) Key(_ context.Context, kid, alg string) (any, error) {
	d := s.cur
	var k *Key
	if kid == "" {
		if len(d.keys) != 1 {
			return nil, fmt.Errorf("%w: token has no kid", ErrUnknownKey)
		}
		k = d.keys[0]
	} else {
		k = d.byKid[kid]
	}
	if k == nil || k.Alg != alg {
		return nil, ErrUnknownKey
	}
	return k.verify, nil
}

// Signer is the key that signs new tokens, or nil if the set is empty or
// the first key is verify-only.
func (s *KeySet) Signer() *Key {
	d := s.cur
	if len(d.keys) == 0 || d.keys[0].sign == nil {
		return nil
	}
	return d.keys[0]
}

// Sign signs claims with the first key, setting kid and typ.
func (s *KeySet) Sign(claims jwt.Claims, typ string) (string, error) {
	k := s.Signer()
	if k == nil {
		return "", errors.New("no signing key configured")
	}
	t := jwt.NewWithClaims(k.method, claims)
	t.Header["kid"] = k.Kid
	if typ != "" {
		t.Header["typ"] = typ
	}
	signed, err := t.SignedString(k.sign)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return signed, nil
}

// JWKS returns the JSON Web Key Set of the asymmetric keys' public halves
// (HMAC secrets are never published), and whether there is any.
func (s *KeySet) JWKS() ([]byte, bool) {
	var set jose.JSONWebKeySet
	for _, k := range s.cur.keys {
		if _, hmac := k.verify.([]byte); hmac {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.verify, KeyID: k.Kid, Algorithm: k.Alg, Use: "sig"})
	}
	if len(set.Keys) == 0 {
		return nil, false
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, false
	}
	return b, true
}
