package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/upstream"
)

// generationUpstreams are what one generation built for its routes'
// upstreams: target pools (their health checks run while the generation
// is started) and transports of their own. Closing the generation stops
// the checks and closes the transports' idle connections.
type generationUpstreams struct {
	pools      []*upstream.Pool
	transports []*http.Transport
}

func (u *generationUpstreams) start(ctx context.Context) {
	for _, p := range u.pools {
		p.Start(ctx)
	}
}

func (u *generationUpstreams) close() {
	for _, p := range u.pools {
		p.Close()
	}
	for _, t := range u.transports {
		t.CloseIdleConnections()
	}
}

// health lists every pool's targets.
func (u *generationUpstreams) health() []upstream.Health {
	var out []upstream.Health
	for _, p := range u.pools {
		out = append(out, p.Health()...)
	}
	return out
}

// routeUpstreams sets rt's upstream from routes[i]: the URL it forwards
// under, a transport of its own for https and h2c upstreams, and a target
// pool for several upstreams or a health check.
func (a *App) routeUpstreams(cfg *config.Config, i int, rt *proxy.Route, ups *generationUpstreams) error {
	rc := cfg.Routes[i]
	targets := rc.Targets()
	if len(targets) == 0 {
		return nil // Validate refused the config already
	}
	scheme := targets[0].Scheme
	var tlsConfig *tls.Config
	if scheme == "https" {
		var ut *upstream.TLS
		if t := rc.UpstreamTLS; t != nil {
			ut = &upstream.TLS{CAPEM: t.CAPEM, CertPEM: t.CertPEM, KeyPEM: t.KeyPEM, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
		}
		var err error
		if tlsConfig, err = ut.ClientTLS(); err != nil {
			return config.Errors{cfg.Problem(fmt.Sprintf("routes[%d].upstream_tls", i), "%v", err)}
		}
	}
	forwarded := make([]*url.URL, len(targets))
	names := make([]string, len(targets))
	for j, u := range targets {
		f := *u
		if f.Scheme == "h2c" {
			f.Scheme = "http" // spoken as HTTP/2 by the route's transport
		}
		forwarded[j], names[j] = &f, u.String()
	}
	rt.Upstream = forwarded[0]
	if t := upstream.Transport(a.transport, scheme, tlsConfig); t != nil {
		rt.Transport = a.tracing.Transport("upstream", t, false)
		ups.transports = append(ups.transports, t)
	}
	if len(rc.Upstreams) == 0 && rc.HealthCheck == nil {
		return nil
	}
	transport := a.upstreamRT
	if rt.Transport != nil {
		transport = rt.Transport
	}
	o := upstream.Options{Route: rc.Name, Targets: forwarded, Names: names, Transport: transport, Logger: a.Logger}
	if a.Metrics != nil {
		o.Observer = a.Metrics
	}
	if h := rc.HealthCheck; h != nil {
		o.Check = &upstream.Check{Path: h.Path, Interval: h.Interval.D(), Timeout: h.Timeout.D(), UnhealthyAfter: h.UnhealthyAfter, HealthyAfter: h.HealthyAfter}
	}
	p := upstream.New(o)
	rt.Upstreams = p
	ups.pools = append(ups.pools, p)
	return nil
}

// upstreamsDown describes the targets of the current generation that are
// down, for /readyz ("" when none is).
func (a *App) upstreamsDown() string {
	g := a.acquire()
	if g == nil {
		return ""
	}
	defer g.release()
	var down []string
	for _, h := range g.upstreams.health() {
		if !h.Up {
			down = append(down, h.Route+" "+h.Target)
		}
	}
	if len(down) == 0 {
		return ""
	}
	return "upstream targets down: " + strings.Join(down, ", ")
}
