package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/ratelimit"
)

// certificate holds the serving certificate; a reload swaps it.
type certificate struct {
	cur atomic.Pointer[tls.Certificate]
}

func (c *certificate) load(cfg *config.TLS) error {
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("loading TLS certificate: %w", err)
	}
	c.cur.Store(&cert)
	return nil
}

// tlsConfig serves TLS 1.2+ with forward-secret AEAD suites only (TLS 1.3
// suites are not configurable and all modern).
func tlsConfig(cfg *config.TLS, cert *certificate) *tls.Config {
	min := uint16(tls.VersionTLS12)
	if cfg.MinVersion == "1.3" {
		min = tls.VersionTLS13
	}
	return &tls.Config{
		MinVersion: min,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cert.cur.Load(), nil
		},
	}
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
	hsts := s.TLS != nil && s.TLS.HSTS
	behindProxy := s.HTTPSOnly && s.TLS == nil && s.BehindTLSProxy
	if !hsts && !behindProxy {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hsts {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		if behindProxy {
			_, trusted := ips.ClientIP(r)
			if !trusted {
				proxy.WriteError(w, http.StatusForbidden, "https required: connect through the TLS proxy")
				return
			}
			if !strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
				if r.Host == "" || strings.ContainsAny(r.Host, "/\\@") {
					proxy.WriteError(w, http.StatusBadRequest, "bad host")
					return
				}
				w.Header().Set("Location", "https://"+r.Host+r.URL.RequestURI())
				w.WriteHeader(http.StatusPermanentRedirect)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
