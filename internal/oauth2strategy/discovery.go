package oauth2strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxMetadataBytes caps the discovery document; real ones are a few KiB.
const maxMetadataBytes = 1 << 20

// errIssuerMismatch: the provider names another issuer than the one we were
// configured with. It is a configuration error (or an impersonation), never
// retried into success, so New reports it instead of starting.
var errIssuerMismatch = errors.New("discovered issuer differs from issuer_url")

// metadata is the part of an OpenID Provider's discovery document the
// strategy uses.
type metadata struct {
	Issuer        string `json:"issuer"`
	JWKSURI       string `json:"jwks_uri"`
	Introspection string `json:"introspection_endpoint"`
}

// discover fetches issuer's OpenID Connect discovery document
// (/.well-known/openid-configuration, OIDC Discovery 1.0 §4) and checks that
// it speaks for that issuer (§4.3). client must not follow redirects.
//
// The document is read by hand rather than with go-oidc: three string
// members of a JSON object, read with a size cap and a typed mismatch error,
// which go-oidc's NewProvider offers neither of.
func discover(ctx context.Context, client *http.Client, issuer string) (*metadata, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("discovery request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery endpoint answered status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading discovery document: %w", err)
	}
	if len(body) > maxMetadataBytes {
		return nil, fmt.Errorf("discovery document larger than %d bytes", maxMetadataBytes)
	}
	var m metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decoding discovery document: %w", err)
	}
	if m.Issuer != issuer {
		return nil, fmt.Errorf("%w: %q, configured %q", errIssuerMismatch, m.Issuer, issuer)
	}
	for _, e := range []struct{ name, val string }{{"jwks_uri", m.JWKSURI}, {"introspection_endpoint", m.Introspection}} {
		if e.val != "" && !httpURL(e.val) {
			return nil, fmt.Errorf("discovery document: %s is not an absolute http(s) URL", e.name)
		}
	}
	return &m, nil
}

func httpURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}
