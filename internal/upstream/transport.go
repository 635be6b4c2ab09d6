package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
)

// TLS is how the gateway connects to https targets (config.UpstreamTLS,
// with the files read).
type TLS struct {
	CAPEM, CertPEM, KeyPEM []byte
	ServerName             string
	// InsecureSkipVerify accepts any certificate; the config warns of it.
	InsecureSkipVerify bool
}

// ClientTLS builds the TLS config for a route's https targets: the
// certificate is verified against CAPEM (default: the system roots) for
// ServerName (default: each target's host); CertPEM and KeyPEM are the
// client certificate. h2 and HTTP/1.1 are offered by ALPN.
func (t *TLS) ClientTLS() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if t == nil {
		return c, nil
	}
	c.ServerName = t.ServerName
	c.InsecureSkipVerify = t.InsecureSkipVerify
	if len(t.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.CAPEM) {
			return nil, errors.New("ca_file: no PEM certificate in it")
		}
		c.RootCAs = pool
	}
	if len(t.CertPEM) > 0 || len(t.KeyPEM) > 0 {
		cert, err := tls.X509KeyPair(t.CertPEM, t.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Transport returns base's settings for targets of scheme: for h2c,
// HTTP/2 with prior knowledge over plain TCP (the targets' URLs are then
// given as http); for https, tlsConfig and h2 negotiated by ALPN. Other
// schemes need no transport of their own: nil.
func Transport(base *http.Transport, scheme string, tlsConfig *tls.Config) *http.Transport {
	var p http.Protocols
	switch scheme {
	case "h2c":
		p.SetUnencryptedHTTP2(true)
	case "https":
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	default:
		return nil
	}
	t := base.Clone()
	t.Protocols = &p
	t.ForceAttemptHTTP2 = scheme == "https"
	t.TLSClientConfig = tlsConfig
	return t
}
