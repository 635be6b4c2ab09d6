package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/server"
)

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, "; ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

const explainUsage = `usage: authgateway explain [-config PATH] METHOD URL [-H "Name: value"]... [-ip ADDR] [-json]`

func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("explain", stderr)
	var headers headerFlags
	fs.Var(&headers, "H", `request header "Name: value" (repeatable; Host and Content-Length count as the server reads them)`)
	asJSON := fs.Bool("json", false, "print JSON")
	clientIP := fs.String("ip", "127.0.0.1", "address the request comes from (the TCP peer; X-Forwarded-For counts only from server.trusted_proxies)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, explainUsage)
		return exitUsage
	}
	r, err := explainRequest(ctx, pos[0], pos[1], headers, *clientIP)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway explain: %v\n%s\n", err, explainUsage)
		return exitUsage
	}
	cfg, ok := loadConfig(*cfgPath, stderr)
	if !ok {
		return exitFailure
	}
	app, err := server.Build(ctx, cfg, server.NewLogger(cfg.Log, io.Discard), server.DryRun())
	if err != nil {
		printBuildError(stderr, cfg.Path, err)
		return exitFailure
	}
	defer app.Close()
	ex := app.Explain(r)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(ex)
		return exitOK
	}
	printExplanation(stdout, ex)
	return exitOK
}

// explainRequest builds the request the gateway would have read: target is
// the request-target as on the wire (origin-form "/path?q", or absolute-form
// "http://host/path", whose host is the request's Host as in net/http), so
// every path trick is decided as sent.
func explainRequest(ctx context.Context, method, target string, headers []string, ip string) (*http.Request, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, fmt.Errorf("-ip %q: want an IP address", ip)
	}
	if target == "" {
		return nil, fmt.Errorf("empty TARGET: want a path or an http(s) URL")
	}
	r, err := http.NewRequestWithContext(ctx, method, "http://gateway/", nil)
	if err != nil {
		return nil, err
	}
	r.RequestURI = target
	r.Host = absoluteHost(target)
	r.RemoteAddr = netip.AddrPortFrom(addr, 0).String()
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, fmt.Errorf(`-H %q: want "Name: value"`, h)
		}
		switch http.CanonicalHeaderKey(name) {
		case "Host": // the server moves it out of the header map
			if r.Host == "" {
				r.Host = value
			}
			continue
		case "Content-Length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("-H %q: want a length", h)
			}
			r.ContentLength = n
		case "Transfer-Encoding": // a streamed body of unknown length
			r.TransferEncoding, r.ContentLength = []string{value}, -1
			continue
		}
		r.Header.Add(name, value)
	}
	if r.Host == "" {
		r.Host = "localhost"
	}
	return r, nil
}

// absoluteHost is the host of an absolute-form target ("" for any other).
func absoluteHost(target string) string {
	for _, scheme := range []string{"http://", "https://"} {
		if len(target) > len(scheme) && strings.EqualFold(target[:len(scheme)], scheme) {
			rest := target[len(scheme):]
			if i := strings.IndexAny(rest, "/?#"); i >= 0 {
				rest = rest[:i]
			}
			return rest
		}
	}
	return ""
}

func printExplanation(w io.Writer, ex *proxy.Explanation) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("request:   %s %s", ex.Method, ex.RequestTarget)
	if ex.PathError != "" {
		p("path:      refused: %s", ex.PathError)
	} else if ex.Path != ex.RequestTarget {
		p("path:      %s (canonical form; routed and forwarded as this)", ex.Path)
	}
	if ex.Host != "" {
		p("host:      %s (as routes match it)", ex.Host)
	}
	if ex.Route != "" {
		p("route:     %s (prefix %s; host: %s; methods: %s)", ex.Route, ex.RoutePrefix, ex.RouteHost, ex.RouteMethods)
		if ex.UpstreamPath != "" && ex.UpstreamPath != ex.Path {
			p("strip:     %s is forwarded as %s under the upstream's base path", ex.Path, ex.UpstreamPath)
		}
	} else if ex.PathError == "" {
		p("route:     none")
	}
	for _, m := range ex.OtherRoutes {
		p("  not %-14s %-20s %s", m.Route, m.Prefix, m.Why)
	}
	if ex.Public {
		p("auth:      public route: no authentication, X-Auth-* headers stripped")
	}
	for i, s := range ex.Strategies {
		line := fmt.Sprintf("  %d. %-12s %s", i+1, s.Name, s.Result)
		if s.Reason != "" && s.Reason != s.Result {
			line += " (" + s.Reason + ")"
		}
		if i == 0 {
			p("strategies:")
		}
		p("%s", line)
	}
	if ex.Identity != nil {
		id := ex.Identity
		p("identity:  subject=%s email=%s strategy=%s roles=[%s] scopes=[%s] client_id=%s", id.Subject, orDash(id.Email), id.Strategy,
			strings.Join(id.Roles, ","), strings.Join(id.Scopes, " "), orDash(id.ClientID))
	}
	if len(ex.RolesRequired) > 0 || len(ex.ScopesRequired) > 0 {
		p("requires:  roles any of [%s], scopes all of [%s]: %s", strings.Join(ex.RolesRequired, ","), strings.Join(ex.ScopesRequired, " "), orDash(ex.Authorization))
	}
	if pv := ex.Policy; pv != nil {
		res := pv.Result
		if pv.Error != "" {
			res += ": " + pv.Error
		}
		p("allow_if:  %s => %s", pv.AllowIf, res)
	}
	if ex.RateLimit != "" {
		p("limit:     %s", ex.RateLimit)
	}
	status := "-"
	if ex.Status != 0 {
		status = fmt.Sprintf("%d %s", ex.Status, http.StatusText(ex.Status))
	}
	p("decision:  %s: %s", status, ex.Decision)
	if ex.Reason != "" || ex.Outcome != proxy.OutcomeNone {
		p("logged:    outcome=%s reason=%s", orDash(ex.Outcome.String()), orDash(ex.Reason))
	}
	if len(ex.ResponseHeaders) > 0 {
		p("response headers set by the gateway:")
		for _, name := range proxy.SortedHeaderNames(ex.ResponseHeaders) {
			p("  %s: %s", name, ex.ResponseHeaders[name])
		}
	}
	if len(ex.UpstreamTargets) > 0 {
		p("upstream targets (round robin over the healthy; explain probes none and does not advance it):")
		for _, t := range ex.UpstreamTargets {
			state := "up"
			if !t.Up {
				state = "down"
			}
			if !t.Probed {
				state += ", not probed"
			}
			pick := ""
			if t.Target == ex.UpstreamTarget {
				pick = "  <- next"
			}
			p("  %s (%s)%s", t.Target, state, pick)
		}
	}
	if ex.UpstreamURL != "" {
		p("upstream:  %s %s", ex.Method, ex.UpstreamURL)
		p("headers the upstream would get:")
		for _, name := range proxy.SortedHeaderNames(ex.UpstreamHeaders) {
			p("  %s: %s", name, ex.UpstreamHeaders[name])
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var _ flag.Value = (*headerFlags)(nil)
