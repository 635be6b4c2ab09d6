// Package mtls is the mtls strategy: the client certificate presented in
// the TLS handshake is the credential.
//
// The listener asks for a certificate (server.tls.client_ca_file) but
// verifies nothing in the handshake (tls.RequestClientCert; Go still checks
// the client's proof that it holds the certificate's key): this strategy
// verifies the chain against the CA pool of its config generation, for
// client authentication, at the time of the request. A bad certificate is
// then answered like any bad credential, 401 with a JSON body and a reason
// in the logs, where a handshake failure would tell the client nothing
// (and would also cut off routes that do not use certificates at all).
package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/strategies"
)

// maxCached bounds the cache of verified chains: only chains signed by a
// trusted CA enter it.
const maxCached = 10000

// cacheFor is how long a verified chain is trusted without verifying it
// again (never past a certificate's expiry).
const cacheFor = 5 * time.Minute

// maxSubjectHeader is the longest subject DN sent to the upstream.
const maxSubjectHeader = 1024

// Strategy authenticates by verified client certificate; safe for
// concurrent use.
type Strategy struct {
	pool      *x509.CertPool
	from      string
	allowed   []string
	roles     []string
	userRoles map[string][]string
	now       func() time.Time
	onCache   func(hit bool)

	mu    sync.Mutex
	cache map[[32]byte]time.Time // chain digest → verified until
}

// New builds the mtls strategy named name; deps.ClientCAs must be set
// (server.tls.client_ca_file).
func New(name string, sc *config.Strategy, deps strategies.Deps) (strategies.Strategy, error) {
	if deps.ClientCAs == nil {
		return nil, errors.New("type: mtls needs server.tls.client_ca_file")
	}
	s := &Strategy{
		pool: deps.ClientCAs, from: sc.SubjectFrom, allowed: sc.AllowedSubjects, roles: sc.Roles,
		userRoles: map[string][]string{}, now: deps.Clock(), onCache: deps.CacheHook("client_certs"),
		cache: map[[32]byte]time.Time{},
	}
	for user, extra := range sc.UserRoles {
		s.userRoles[user] = append(slices.Clone(sc.Roles), extra...)
	}
	switch s.from {
	case "cn", "san_dns", "san_uri", "san_email":
	default:
		return nil, fmt.Errorf("unknown subject_from %q", s.from)
	}
	return s, nil
}

// Authenticate implements strategies.Strategy. No certificate (or no TLS)
// is no credential: the chain goes on. A certificate that does not verify
// is refused, finally: no later strategy is tried, as if the handshake had
// refused it.
func (s *Strategy) Authenticate(_ context.Context, r *http.Request) (*strategies.Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, strategies.ErrNoCredentials
	}
	certs := r.TLS.PeerCertificates
	leaf := certs[0]
	if err := s.verify(certs); err != nil {
		return nil, err
	}
	sub, ok := s.subject(leaf)
	if !ok {
		return nil, &strategies.InvalidError{Reason: strategies.ReasonSubjectNotAllowed, Final: true}
	}
	roles, ok := s.userRoles[sub]
	if !ok {
		roles = s.roles
	}
	sum := sha256.Sum256(leaf.Raw)
	id := &strategies.Identity{Subject: sub, Roles: roles, ExpiresAt: leaf.NotAfter,
		ClientCert: &strategies.ClientCert{Fingerprint: hex.EncodeToString(sum[:]), Subject: headerSafe(leaf.Subject.String())}}
	if s.from == "san_email" {
		id.Email = sub
	}
	return id, nil
}

// verify checks the presented chain against the pool, for client
// authentication, now; a chain verified in the last cacheFor is not
// verified again.
func (s *Strategy) verify(certs []*x509.Certificate) error {
	h := sha256.New()
	for _, c := range certs {
		h.Write(c.Raw)
	}
	var key [32]byte
	h.Sum(key[:0])
	now := s.now()
	s.mu.Lock()
	until, ok := s.cache[key]
	s.mu.Unlock()
	hit := ok && now.Before(until)
	if s.onCache != nil {
		s.onCache(hit)
	}
	if hit {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: s.pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		reason := strategies.ReasonUntrustedCertificate
		if ie := (x509.CertificateInvalidError{}); errors.As(err, &ie) && ie.Reason == x509.Expired {
			reason = strategies.ReasonExpired
		}
		return &strategies.InvalidError{Reason: reason, Err: err, Final: true}
	}
	until = now.Add(cacheFor)
	for _, c := range chains[0] {
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	s.mu.Lock()
	if len(s.cache) >= maxCached {
		clear(s.cache)
	}
	s.cache[key] = until
	s.mu.Unlock()
	return nil
}

// subject reads the identity from the leaf as subject_from says; with
// allowed_subjects, the first value of that kind that is allowed.
func (s *Strategy) subject(leaf *x509.Certificate) (string, bool) {
	var vals []string
	switch s.from {
	case "cn":
		// Go keeps the last of several CN attributes, OpenSSL (nginx's
		// $ssl_client_s_dn_cn, most apps) reads the first: a subject with
		// two names no one identity; refused.
		if commonNames(leaf.Subject) != 1 {
			return "", false
		}
		vals = []string{leaf.Subject.CommonName}
	case "san_dns":
		vals = leaf.DNSNames
	case "san_email":
		vals = leaf.EmailAddresses
	case "san_uri":
		for _, u := range leaf.URIs {
			vals = append(vals, u.String())
		}
	}
	for _, v := range vals {
		if v != "" && (len(s.allowed) == 0 || slices.Contains(s.allowed, v)) {
			return v, true
		}
	}
	return "", false
}

// commonNames counts the CN attributes (X.520 commonName, 2.5.4.3) of a
// parsed subject.
func commonNames(n pkix.Name) int {
	oidCommonName := asn1.ObjectIdentifier{2, 5, 4, 3}
	c := 0
	for _, a := range n.Names {
		if a.Type.Equal(oidCommonName) {
			c++
		}
	}
	return c
}

// headerSafe is dn, or "" when it cannot go in a header as it is.
func headerSafe(dn string) string {
	if len(dn) > maxSubjectHeader {
		return ""
	}
	for i := 0; i < len(dn); i++ {
		if dn[i] < 0x20 || dn[i] == 0x7f {
			return ""
		}
	}
	return dn
}

var _ strategies.Strategy = (*Strategy)(nil)
