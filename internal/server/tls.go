package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/ratelimit"
)

// tlsConfig serves TLS 1.2+ with forward-secret AEAD suites only (TLS 1.3
// suites are not configurable and all modern), with the certificate of the
// generation current at each handshake.
func (a *App) tlsConfig(cfg *config.TLS) *tls.Config {
	min := uint16(tls.VersionTLS12)
	if cfg.MinVersion == "1.3" {
		min = tls.VersionTLS13
	}
	// With client_ca_file the listener asks for a client certificate but
	// neither requires nor verifies one: mtls strategies verify it against
	// the current generation's CAs, so a bad one gets a 401 with a reason
	// rather than a failed handshake (package strategies/mtls). Go still
	// checks that the client holds the certificate's key.
	clientAuth := tls.NoClientCert
	if cfg.ClientCAFile != "" {
		clientAuth = tls.RequestClientCert
	}
	base := &tls.Config{
		MinVersion: min,
		ClientAuth: clientAuth,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       []string{"h2", "http/1.1"}, // h2 for gRPC clients (and browsers)
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			// The certificate is data: no reference needs holding.
			if g := a.gen.Load(); g != nil && g.cert != nil {
				return g.cert, nil
			}
			return nil, errors.New("no certificate: shutting down")
		},
	}
	if clientAuth == tls.RequestClientCert {
		// The request names the current generation's CAs, so that a
		// client holding several certificates presents one of them.
		// Nothing is verified against them in the handshake.
		// One config per CA pool (a generation's), made at its first
		// handshake rather than cloned for every one.
		type withCAs struct {
			pool *x509.CertPool
			cfg  *tls.Config
		}
		var last atomic.Pointer[withCAs]
		base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			var pool *x509.CertPool
			if g := a.gen.Load(); g != nil {
				pool = g.clientCAs
			}
			if w := last.Load(); w != nil && w.pool == pool {
				return w.cfg, nil
			}
			c := base.Clone()
			c.GetConfigForClient = nil
			c.ClientCAs = pool
			last.Store(&withCAs{pool: pool, cfg: c})
			return c, nil
		}
	}
	return base
}

// httpsRedirect answers every plain-HTTP request with 308 to the same path
// on https, at the TLS listener's port.
func httpsRedirect(tlsListen string) http.Handler {
	_, port, _ := net.SplitHostPort(tlsListen)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(host, "/\\@") {
			proxy.WriteError(w, http.StatusBadRequest, "bad host")
			return
		}
		if strings.Contains(host, ":") { // IPv6 literal
			host = "[" + host + "]"
		}
		if port != "" && port != "443" {
			host += ":" + port
		}
		target := "https://" + host + r.URL.RequestURI()
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}

// secureTransport wraps the gateway: HSTS on every response when enabled;
// and with https_only behind a TLS-terminating proxy, requests that did not
// come through a trusted proxy over https are refused or redirected.
func secureTransport(next http.Handler, s config.Server, ips *ratelimit.IPResolver) http.Handler {
	hsts, behindProxy := hstsOn(s), httpsBehindProxy(s)
	if !hsts && !behindProxy {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hsts {
			w.Header().Set(hstsHeader, hstsValue)
		}
		if behindProxy {
			status, msg, location := httpsOnlyAnswer(r, ips)
			switch {
			case location != "":
				w.Header().Set("Location", location)
				w.WriteHeader(status)
				return
			case status != 0:
				proxy.WriteError(w, status, msg)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

const hstsHeader, hstsValue = "Strict-Transport-Security", "max-age=31536000; includeSubDomains"

func hstsOn(s config.Server) bool { return s.TLS != nil && s.TLS.HSTS }

// httpsBehindProxy: https_only with TLS terminated by a trusted proxy.
func httpsBehindProxy(s config.Server) bool { return s.HTTPSOnly && s.TLS == nil && s.BehindTLSProxy }

// httpsOnlyAnswer is what https_only behind a TLS proxy answers instead of
// the pipeline: 403 for a request not from a trusted proxy, 308 to https
// (with location) for one the proxy received over plain http, 400 for a
// host no redirect may name; status 0 lets the request through.
func httpsOnlyAnswer(r *http.Request, ips *ratelimit.IPResolver) (status int, msg, location string) {
	if _, trusted := ips.ClientIP(r); !trusted {
		return http.StatusForbidden, "https required: connect through the TLS proxy", ""
	}
	if strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return 0, "", ""
	}
	if r.Host == "" || strings.ContainsAny(r.Host, "/\\@") {
		return http.StatusBadRequest, "bad host", ""
	}
	return http.StatusPermanentRedirect, "plain http through the TLS proxy: redirect to https", "https://" + r.Host + r.URL.RequestURI()
}

// Explain is explain's answer for r: the main listener's own rules in front
// of the pipeline (HSTS; https_only behind a TLS proxy), then the
// pipeline's decision (proxy.Gateway.Explain).
func (a *App) Explain(r *http.Request) *proxy.Explanation {
	g := a.acquire()
	if g == nil {
		return &proxy.Explanation{Method: r.Method, RequestTarget: r.RequestURI, Status: http.StatusServiceUnavailable, Decision: "closed"}
	}
	defer g.release()
	if a.dryRun && a.sessions != nil {
		// A session's access token is checked against the denylist: read
		// it once (a gateway keeps it current by subscription).
		a.denylistRead.Do(func() {
			if err := a.sessions.ReadDenylist(r.Context()); err != nil {
				a.Logger.Warn("reading the session denylist", "error", err)
			}
		})
	}
	s := g.cfg.Server
	var ex *proxy.Explanation
	if httpsBehindProxy(s) {
		if status, msg, location := httpsOnlyAnswer(r, a.ips); status != 0 {
			ip, _ := a.ips.ClientIP(r)
			ex = &proxy.Explanation{Method: r.Method, RequestTarget: r.RequestURI, ClientIP: ip.String(),
				Status: status, Decision: "server.https_only: " + msg}
			if location != "" {
				ex.ResponseHeaders = map[string]string{"Location": location}
			}
		}
	}
	if ex == nil {
		ex = g.gateway.Explain(r)
	}
	if hstsOn(s) {
		if ex.ResponseHeaders == nil {
			ex.ResponseHeaders = map[string]string{}
		}
		ex.ResponseHeaders[hstsHeader] = hstsValue
	}
	return ex
}
