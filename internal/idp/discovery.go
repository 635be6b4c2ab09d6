package idp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
)

// ErrIssuerMismatch: the provider's discovery document names another issuer
// than the one configured. It is a configuration error (or an
// impersonation), never retried into success.
var ErrIssuerMismatch = errors.New("discovered issuer differs from the configured one")

// Metadata is what the gateway reads of a provider's discovery document.
type Metadata struct {
	Issuer      string
	AuthURL     string // authorization_endpoint
	TokenURL    string // token_endpoint
	UserinfoURL string // userinfo_endpoint
	JWKSURL     string // jwks_uri
	// IntrospectionURL is introspection_endpoint (RFC 8414, RFC 7662).
	IntrospectionURL string
	// EndSessionURL is end_session_endpoint (RP-initiated logout).
	EndSessionURL string
	// IDTokenAlgorithms are the Algorithms among
	// id_token_signing_alg_values_supported.
	IDTokenAlgorithms []string
}

// Discover reads issuer's OpenID Connect discovery document
// (/.well-known/openid-configuration) with go-oidc, through client (a
// Harden one: no redirects, a size cap), and checks that it speaks for
// issuer (OIDC Discovery 1.0 §4.3; ErrIssuerMismatch) and that every
// endpoint it names is an absolute http(s) URL.
func Discover(ctx context.Context, client *http.Client, issuer string) (*Metadata, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), issuer)
	if err != nil {
		if mm := (*oidc.IssuerMismatchError)(nil); errors.As(err, &mm) {
			return nil, fmt.Errorf("%w: %q, configured %q", ErrIssuerMismatch, mm.Discovered, issuer)
		}
		return nil, fmt.Errorf("discovering %s: %w", issuer, err)
	}
	// Members go-oidc has no accessor for.
	var doc struct {
		JWKSURI       string   `json:"jwks_uri"`
		Introspection string   `json:"introspection_endpoint"`
		EndSession    string   `json:"end_session_endpoint"`
		Algorithms    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&doc); err != nil {
		return nil, fmt.Errorf("reading discovery document of %s: %w", issuer, err)
	}
	ep := p.Endpoint()
	m := &Metadata{
		Issuer: issuer, AuthURL: ep.AuthURL, TokenURL: ep.TokenURL, UserinfoURL: p.UserInfoEndpoint(),
		JWKSURL: doc.JWKSURI, IntrospectionURL: doc.Introspection, EndSessionURL: doc.EndSession,
	}
	for _, a := range doc.Algorithms {
		if Asymmetric(a) && !slices.Contains(m.IDTokenAlgorithms, a) {
			m.IDTokenAlgorithms = append(m.IDTokenAlgorithms, a)
		}
	}
	for _, e := range []struct{ name, val string }{
		{"authorization_endpoint", m.AuthURL}, {"token_endpoint", m.TokenURL}, {"userinfo_endpoint", m.UserinfoURL},
		{"jwks_uri", m.JWKSURL}, {"introspection_endpoint", m.IntrospectionURL}, {"end_session_endpoint", m.EndSessionURL},
	} {
		if e.val != "" && !HTTPURL(e.val) {
			return nil, fmt.Errorf("discovery document of %s: %s is not an absolute http(s) URL", issuer, e.name)
		}
	}
	return m, nil
}

// HTTPURL reports whether raw is an absolute http or https URL without
// credentials in it.
func HTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}
