package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Health check defaults (DESIGN.md, "Routes that fit real deployments").
const (
	DefaultHealthInterval       = 5 * time.Second
	DefaultHealthTimeout        = time.Second
	DefaultHealthUnhealthyAfter = 3
	DefaultHealthHealthyAfter   = 2
)

// HealthCheck is a route's active probe of each upstream target: GET Path
// (under the target's base path) every Interval; a 2xx or 3xx answer
// within Timeout is a success.
type HealthCheck struct {
	// Path is probed on each target. Required.
	Path string `yaml:"path"`
	// Interval between probes of a target. Default 5s.
	Interval Duration `yaml:"interval"`
	// Timeout of one probe. Default 1s; at most Interval.
	Timeout Duration `yaml:"timeout"`
	// UnhealthyAfter consecutive failures take a target out. Default 3.
	UnhealthyAfter int `yaml:"unhealthy_after"`
	// HealthyAfter consecutive successes put it back. Default 2.
	HealthyAfter int `yaml:"healthy_after"`
}

// UpstreamTLS is how the gateway connects to a route's https upstreams.
type UpstreamTLS struct {
	// CAFile holds the PEM roots that verify the upstream's certificate.
	// Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate presented to the
	// upstream (mTLS). Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the certificate must hold (and the SNI).
	// Default: the upstream URL's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate. Default false; true is
	// warned about at start and by validate.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`

	// CAPEM, CertPEM and KeyPEM are the files' contents (read by LoadSecrets).
	CAPEM, CertPEM, KeyPEM []byte `yaml:"-"`
}

// upstreamSchemes are the schemes an upstream URL may have: h2c is HTTP/2
// without TLS (prior knowledge, for gRPC); https negotiates h2 or
// HTTP/1.1 by ALPN.
var upstreamSchemes = []string{"http", "https", "h2c"}

// provisionUpstreams parses upstreams and fills the health check's defaults.
func (r *Route) provisionUpstreams() {
	r.UpstreamURLs = nil
	for _, raw := range r.Upstreams {
		u, err := url.Parse(raw)
		if err != nil {
			u = nil // Validate names it
		}
		r.UpstreamURLs = append(r.UpstreamURLs, u)
	}
	if h := r.HealthCheck; h != nil {
		orZero(&h.Interval, Duration(DefaultHealthInterval))
		orZero(&h.Timeout, Duration(DefaultHealthTimeout))
		orZero(&h.UnhealthyAfter, DefaultHealthUnhealthyAfter)
		orZero(&h.HealthyAfter, DefaultHealthHealthyAfter)
	}
}

// Targets are the route's upstream URLs: Upstreams, or the one Upstream.
func (r *Route) Targets() []*url.URL {
	if len(r.Upstreams) > 0 {
		return r.UpstreamURLs
	}
	if r.UpstreamURL != nil {
		return []*url.URL{r.UpstreamURL}
	}
	return nil
}

// upstreams checks a route's upstream, upstreams, health_check and
// upstream_tls.
func (v *validator) upstreams(path string, r *Route) {
	switch {
	case r.Upstream != "" && r.Upstreams != nil:
		v.errorf(path+".upstreams", "set upstream or upstreams, not both")
		return
	case r.Upstreams != nil && len(r.Upstreams) == 0:
		v.errorf(path+".upstreams", "at least one upstream URL is required")
		return
	case r.Upstream == "" && r.Upstreams == nil:
		v.errorf(path+".upstream", "required: where to forward the route's requests")
		return
	}
	var first *url.URL
	seen := map[string]int{}
	if r.Upstream != "" {
		first = v.upstreamURL(path+".upstream", r.Upstream)
	}
	for i, raw := range r.Upstreams {
		p := fmt.Sprintf("%s.upstreams[%d]", path, i)
		u := v.upstreamURL(p, raw)
		if u == nil {
			continue
		}
		if j, dup := seen[u.Host]; dup {
			v.errorf(p, "%s is also upstreams[%d]", u.Host, j)
		}
		seen[u.Host] = i
		if first == nil {
			first = u
			continue
		}
		// One route forwards one path to one app: its instances differ
		// in host and port only.
		if u.Scheme != first.Scheme || strings.TrimSuffix(u.EscapedPath(), "/") != strings.TrimSuffix(first.EscapedPath(), "/") {
			v.errorf(p, "%q: the upstreams of a route must differ only in host and port (scheme %s and path %q as upstreams[0])", raw, first.Scheme, first.Path)
		}
	}
	if h := r.HealthCheck; h != nil {
		hp := path + ".health_check"
		if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, "?#") {
			v.errorf(hp+".path", "required: an absolute path such as /healthz (no query)")
		}
		if h.Interval <= 0 {
			v.errorf(hp+".interval", "must be a positive duration")
		}
		if h.Timeout <= 0 || h.Timeout > h.Interval {
			v.errorf(hp+".timeout", "must be positive and at most interval")
		}
		if h.UnhealthyAfter < 1 {
			v.errorf(hp+".unhealthy_after", "must be at least 1")
		}
		if h.HealthyAfter < 1 {
			v.errorf(hp+".healthy_after", "must be at least 1")
		}
	}
	if t := r.UpstreamTLS; t != nil {
		tp := path + ".upstream_tls"
		if first != nil && first.Scheme != "https" {
			v.errorf(tp, "applies to https:// upstreams only (this route's are %s://)", first.Scheme)
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			v.errorf(tp, "cert_file and key_file go together (the client certificate and its key)")
		}
		if t.InsecureSkipVerify && t.CAFile != "" {
			v.errorf(tp+".insecure_skip_verify", "with ca_file: remove insecure_skip_verify, the CA verifies the upstream")
		}
	}
}

// upstreamURL checks one upstream URL: http, https or h2c, with a host, no
// credentials, query or fragment.
func (v *validator) upstreamURL(path, raw string) *url.URL {
	u := v.absoluteURL(path, raw, upstreamSchemes)
	if u == nil {
		return nil
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		v.errorf(path, "must not have a query or fragment")
		return nil
	}
	return u
}

// readUpstreamTLS reads the CA, certificate and key files of an upstream_tls.
func (v *validator) readUpstreamTLS(path string, t *UpstreamTLS) {
	if t.CAFile != "" {
		t.CAPEM, _ = v.readFile(path+".ca_file", t.CAFile)
	}
	if t.CertFile != "" && t.KeyFile != "" {
		t.CertPEM, _ = v.readFile(path+".cert_file", t.CertFile)
		t.KeyPEM, _ = v.readFile(path+".key_file", t.KeyFile)
	}
}
