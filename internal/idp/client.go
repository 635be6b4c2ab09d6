// Package idp is the gateway's one client for identity providers: the
// hardened HTTP client every call to a provider goes through, OpenID
// Connect discovery (go-oidc's), the retry policy for a provider that
// cannot be reached, and the list of public-key algorithms a provider may
// sign with. Key sets are cached by internal/jwks on top of it.
package idp

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

const (
	// Timeout bounds one request to a provider, from dialling to the end
	// of the answer.
	Timeout = 5 * time.Second
	// MaxBodyBytes caps every answer of a provider: discovery documents,
	// key sets, token, introspection and userinfo answers are a few KiB.
	MaxBodyBytes = 1 << 20
	// maxHeaderBytes caps an answer's header.
	maxHeaderBytes = 64 << 10
)

// ErrBodyTooLarge: a provider's answer is longer than MaxBodyBytes.
var ErrBodyTooLarge = errors.New("provider answer larger than 1048576 bytes")

// NewHTTPClient returns the client for identity providers (see Harden).
func NewHTTPClient() *http.Client { return Harden(nil) }

// Harden returns a copy of c (nil: a new client) fit to talk to an identity
// provider:
//   - it never follows a redirect: a 3xx is answered as is, so discovery
//     cannot be led to another issuer's document, key fetches anywhere, or
//     a token and the client secret posted elsewhere;
//   - it has a Timeout (Timeout, unless c has one);
//   - answers are cut at MaxBodyBytes (reading more fails with
//     ErrBodyTooLarge), whatever reads them (go-oidc reads without a cap);
//   - without a Transport of its own, it gets one that honours the
//     environment's proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), as
//     the operator sets them: many networks reach an outside identity
//     provider only through an egress proxy. (Upstream traffic never goes
//     through one: see proxy.NewTransport.)
func Harden(c *http.Client) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if out.Timeout == 0 {
		out.Timeout = Timeout
	}
	base := out.Transport
	if base == nil {
		base = newTransport()
	}
	if _, ok := base.(capped); !ok {
		base = capped{base}
	}
	out.Transport = base
	return out
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: Timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    Timeout,
		ResponseHeaderTimeout:  Timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
	}
}

// capped cuts every answer's body at MaxBodyBytes.
type capped struct{ base http.RoundTripper }

func (c capped) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &capReader{ReadCloser: resp.Body, left: MaxBodyBytes}
	return resp, nil
}

type capReader struct {
	io.ReadCloser
	left int64
}

func (r *capReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		// One byte more tells a body of exactly the cap from a longer one.
		var b [1]byte
		n, err := r.ReadCloser.Read(b[:])
		if n > 0 {
			return 0, ErrBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.ReadCloser.Read(p)
	r.left -= int64(n)
	return n, err
}
