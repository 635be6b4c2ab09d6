package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/deadaddr"
	"github.com/authgateway/authgateway/internal/testutil/gwbin"
	"github.com/authgateway/authgateway/internal/testutil/oidctest"
	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// jaegerVersion is the Jaeger all-in-one the tracing test exports to;
// .ci/run builds it into the tools cache (never into go.mod).
const jaegerVersion = "v1.75.0"

// jaegerBin finds the jaeger binary: the tools cache .ci/run fills
// ($XDG_CACHE_HOME or ~/.cache, authgateway/bin/jaeger-VERSION), else
// PATH. Without it the test skips, unless AUTHGATEWAY_REQUIRE_JAEGER=1.
func jaegerBin(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if p := filepath.Join(cache, "authgateway", "bin", "jaeger-"+jaegerVersion); cache != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("jaeger"); err == nil {
		return p
	}
	if os.Getenv("AUTHGATEWAY_REQUIRE_JAEGER") == "1" {
		t.Fatalf("jaeger %s not found in the tools cache or PATH (AUTHGATEWAY_REQUIRE_JAEGER=1; scripts/jaeger.sh builds it)", jaegerVersion)
	}
	t.Skipf("jaeger %s not installed (scripts/jaeger.sh builds it)", jaegerVersion)
	return ""
}

// jaeger is a Jaeger all-in-one with in-memory storage on loopback ports.
type jaeger struct {
	OTLP  string // OTLP/HTTP base URL
	Query string // query API base URL
}

func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := jaegerBin(t)
	otlp, query, grpc := freePort(t), freePort(t), freePort(t)
	cfg := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: []
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`, query, grpc, otlp)
	dir := t.TempDir()
	path := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &gwbin.SyncBuffer{}
	cmd := exec.Command(bin, "--config", path)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
	// Jaeger's own traces would go to localhost:4317.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting jaeger: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("jaeger output:\n%s", out.String())
		}
	})
	j := &jaeger{OTLP: "http://" + otlp, Query: "http://" + query}
	poll.Until(t, 30*time.Second, "jaeger to answer", func() error {
		select {
		case <-done:
			t.Fatalf("jaeger exited:\n%s", out.String())
		default:
		}
		for _, u := range []string{j.Query + "/api/services", j.OTLP + "/v1/traces"} {
			resp, err := http.Get(u)
			if err != nil {
				return err
			}
			resp.Body.Close()
		}
		return nil
	})
	return j
}

// jSpan is a span as Jaeger's query API returns it.
type jSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

func (s jSpan) tag(key string) string {
	for _, tg := range s.Tags {
		if tg.Key == key {
			return fmt.Sprint(tg.Value)
		}
	}
	return ""
}

func (s jSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// jTrace is one trace: its spans, and the raw JSON Jaeger served.
type jTrace struct {
	Spans []jSpan
	Raw   string
}

// trace waits until Jaeger holds trace id with at least min spans, and no
// more arrive for a moment.
func (j *jaeger) trace(t *testing.T, id string, min int) jTrace {
	t.Helper()
	var tr jTrace
	last := -1
	poll.Until(t, 20*time.Second, "trace "+id+" in jaeger", func() error {
		resp, err := http.Get(j.Query + "/api/traces/" + id)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		var doc struct {
			Data []struct {
				Spans []jSpan `json:"spans"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return err
		}
		if len(doc.Data) != 1 {
			return fmt.Errorf("%d traces", len(doc.Data))
		}
		tr = jTrace{Spans: doc.Data[0].Spans, Raw: string(body)}
		if n := len(tr.Spans); n < min || n != last {
			last = n
			return fmt.Errorf("%d spans", n)
		}
		return nil
	})
	return tr
}

// byName returns the trace's spans named name.
func (tr jTrace) byName(name string) []jSpan {
	var out []jSpan
	for _, s := range tr.Spans {
		if s.OperationName == name || strings.HasPrefix(s.OperationName, name+" ") {
			out = append(out, s)
		}
	}
	return out
}

// descends reports whether s is a descendant of anc.
func (tr jTrace) descends(s, anc jSpan) bool {
	byID := map[string]jSpan{}
	for _, sp := range tr.Spans {
		byID[sp.SpanID] = sp
	}
	for p := s.parent(); p != ""; p = byID[p].parent() {
		if p == anc.SpanID {
			return true
		}
		if _, ok := byID[p]; !ok {
			return false
		}
	}
	return false
}

// one returns the trace's one span named name.
func (tr jTrace) one(t *testing.T, name string) jSpan {
	t.Helper()
	s := tr.byName(name)
	if len(s) != 1 {
		var names []string
		for _, sp := range tr.Spans {
			names = append(names, sp.OperationName)
		}
		t.Fatalf("spans named %q: %d, want 1 (trace has %v)", name, len(s), names)
	}
	return s[0]
}

func wantTags(t *testing.T, s jSpan, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := s.tag(k); got != v {
			t.Errorf("span %q: %s = %q, want %q", s.OperationName, k, got, v)
		}
	}
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$`)

// TestTracingJaeger drives the built gateway with tracing on into a real
// Jaeger, and reads the traces back through Jaeger's query API: the span
// tree of an allowed, a 401, a 403 and a 502 request, the trace carried to
// the upstream, a trusted proxy's trace continued and a client's not, and
// no credential anywhere in any trace.
func TestTracingJaeger(t *testing.T) {
	j := startJaeger(t)
	rd := redistest.Start(t)
	up := newUpstream(t, 0)
	down := deadaddr.New(t) // nothing listens: 502
	cfg := fmt.Sprintf(`redis:
  url: %q
server:
  trusted_proxies: ["127.0.0.2"]
tracing:
  otlp_endpoint: %s
  service_name: gw-e2e
  sample_ratio: 1
strategies:
  apiKey:
    type: api_key
    header: X-API-Key
    prefixes: [pk_live]
    store: redis
routes:
  - name: keyed
    path: /api
    upstream: %s
    strategies: [apiKey]
  - name: admin
    path: /admin
    upstream: %s
    strategies: [apiKey]
    roles: [admin]
  - name: down
    path: /down
    upstream: http://%s
    strategies: [apiKey]
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
`, rd.URL(), j.OTLP, up.URL, up.URL, down)
	g := startGateway(t, cfg, nil)
	key := createKey(t, g.ConfigPath, nil, "-name", "tracer", "-roles", "reader")
	bogus := "pk_live_" + strings.Repeat("Q", 43)
	cookieSecret := "sess-" + randomSecret(t)
	querySecret := randomSecret(t)
	secrets := append(key.forms(t), bogus, cookieSecret, querySecret)

	untrusted := &http.Client{Timeout: 5 * time.Second}
	trusted := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	send := func(c *http.Client, path, reqID string, h map[string]string) int {
		t.Helper()
		r, _ := http.NewRequest("GET", "http://"+g.Addr+path, nil)
		r.Header.Set("X-Request-Id", reqID)
		r.Header.Set("Cookie", "ag_session="+cookieSecret)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// traceOf is the trace id of a request's auth event.
	traceOf := func(reqID string) string {
		t.Helper()
		id, _ := g.Event(t, reqID)["trace_id"].(string)
		if len(id) != 32 {
			t.Fatalf("auth event of %s: trace_id = %q, want 32 hex digits", reqID, id)
		}
		return id
	}
	var all []jTrace
	// server returns the trace's one server span: the root, or the child
	// of parent when a trusted proxy's trace was continued.
	server := func(tr jTrace, op string, parent string) jSpan {
		t.Helper()
		s := tr.one(t, op)
		if s.parent() != parent {
			t.Errorf("server span %q: parent = %q, want %q", op, s.parent(), parent)
		}
		return s
	}
	childOf := func(tr jTrace, name string, p jSpan) jSpan {
		t.Helper()
		s := tr.one(t, name)
		if s.parent() != p.SpanID {
			t.Errorf("span %q: parent = %q, want %q (%s)", name, s.parent(), p.SpanID, p.OperationName)
		}
		return s
	}

	t.Run("allowed", func(t *testing.T) {
		up.Reset()
		if code := send(untrusted, "/api/items?token="+querySecret, "tr-ok", map[string]string{"X-API-Key": key.Key}); code != 200 {
			t.Fatalf("status = %d, want 200", code)
		}
		id := traceOf("tr-ok")
		m := traceparentRE.FindStringSubmatch(up.One(t).Header.Get("Traceparent"))
		if m == nil || m[1] != id {
			t.Fatalf("upstream traceparent = %q, want one of trace %s", up.One(t).Header.Get("Traceparent"), id)
		}
		tr := j.trace(t, id, 4)
		all = append(all, tr)
		srv := server(tr, "GET keyed", "")
		wantTags(t, srv, map[string]string{"authgateway.route": "keyed", "http.response.status_code": "200",
			"authgateway.outcome": "allowed", "authgateway.strategy": "apiKey", "span.kind": "server"})
		st := childOf(tr, "strategy apiKey", srv)
		wantTags(t, st, map[string]string{"authgateway.result": "identity"})
		ups := childOf(tr, "upstream", srv)
		if ups.SpanID != m[2] {
			t.Errorf("upstream traceparent's parent = %s, want the upstream span %s", m[2], ups.SpanID)
		}
		wantTags(t, ups, map[string]string{"http.response.status_code": "200", "span.kind": "client"})
		// The key's lookup on a cold cache is a Redis call made by the
		// strategy. Right after start the auth-failure limit may also
		// check its counter in Redis (until its watch has scanned), a call
		// of the request made before the strategy: every Redis span is
		// the request's, and the lookup is the strategy's.
		redis := tr.byName("redis")
		fromStrategy := 0
		for _, r := range redis {
			switch {
			case tr.descends(r, st):
				fromStrategy++
			case !tr.descends(r, srv):
				t.Errorf("redis span %q does not descend from the request's server span", r.OperationName)
			}
		}
		if fromStrategy == 0 {
			t.Errorf("no redis span under the strategy span (of %d redis spans): the key lookup should be one", len(redis))
		}
	})

	t.Run("401", func(t *testing.T) {
		if code := send(untrusted, "/api/x", "tr-401", map[string]string{"X-API-Key": bogus}); code != 401 {
			t.Fatalf("status = %d, want 401", code)
		}
		tr := j.trace(t, traceOf("tr-401"), 2)
		all = append(all, tr)
		srv := server(tr, "GET keyed", "")
		wantTags(t, srv, map[string]string{"http.response.status_code": "401", "authgateway.outcome": "invalid"})
		if srv.tag("authgateway.reason") == "" {
			t.Errorf("401 server span has no authgateway.reason")
		}
		st := childOf(tr, "strategy apiKey", srv)
		wantTags(t, st, map[string]string{"authgateway.result": "invalid"})
		if n := len(tr.byName("upstream")); n != 0 {
			t.Errorf("a refused request has %d upstream spans", n)
		}
	})

	t.Run("403", func(t *testing.T) {
		if code := send(untrusted, "/admin/x", "tr-403", map[string]string{"X-API-Key": key.Key}); code != 403 {
			t.Fatalf("status = %d, want 403", code)
		}
		tr := j.trace(t, traceOf("tr-403"), 2)
		all = append(all, tr)
		srv := server(tr, "GET admin", "")
		wantTags(t, srv, map[string]string{"http.response.status_code": "403", "authgateway.outcome": "forbidden",
			"authgateway.reason": "missing_role", "authgateway.strategy": "apiKey"})
		childOf(tr, "strategy apiKey", srv)
		if n := len(tr.byName("upstream")); n != 0 {
			t.Errorf("a refused request has %d upstream spans", n)
		}
	})

	t.Run("502", func(t *testing.T) {
		if code := send(untrusted, "/down/x", "tr-502", map[string]string{"X-API-Key": key.Key}); code != 502 {
			t.Fatalf("status = %d, want 502", code)
		}
		tr := j.trace(t, traceOf("tr-502"), 3)
		all = append(all, tr)
		srv := server(tr, "GET down", "")
		wantTags(t, srv, map[string]string{"http.response.status_code": "502", "authgateway.reason": "upstream_unavailable", "error": "true"})
		childOf(tr, "strategy apiKey", srv)
		wantTags(t, childOf(tr, "upstream", srv), map[string]string{"error": "true"})
	})

	t.Run("trusted proxy's trace continued", func(t *testing.T) {
		up.Reset()
		const incoming, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		code := send(trusted, "/api/t", "tr-trusted", map[string]string{"X-API-Key": key.Key,
			"Traceparent": "00-" + incoming + "-" + parent + "-01", "Tracestate": "vendor=1"})
		if code != 200 {
			t.Fatalf("status = %d, want 200", code)
		}
		if id := traceOf("tr-trusted"); id != incoming {
			t.Errorf("auth event trace_id = %s, want the incoming %s", id, incoming)
		}
		seen := up.One(t).Header
		if m := traceparentRE.FindStringSubmatch(seen.Get("Traceparent")); m == nil || m[1] != incoming || m[2] == parent {
			t.Errorf("upstream traceparent = %q, want trace %s with the gateway's span as parent", seen.Get("Traceparent"), incoming)
		}
		if got := seen.Get("Tracestate"); got != "vendor=1" {
			t.Errorf("upstream tracestate = %q, want the trusted proxy's vendor=1", got)
		}
		tr := j.trace(t, incoming, 3)
		all = append(all, tr)
		server(tr, "GET keyed", parent)
	})

	t.Run("client's traceparent not continued", func(t *testing.T) {
		up.Reset()
		const forged = "11111111111111111111111111111111"
		code := send(untrusted, "/api/u", "tr-forged", map[string]string{"X-API-Key": key.Key,
			"Traceparent": "00-" + forged + "-2222222222222222-01", "Tracestate": "evil=1"})
		if code != 200 {
			t.Fatalf("status = %d, want 200", code)
		}
		id := traceOf("tr-forged")
		if id == forged {
			t.Errorf("a client's traceparent was continued: trace %s", id)
		}
		seen := up.One(t).Header
		if m := traceparentRE.FindStringSubmatch(seen.Get("Traceparent")); m == nil || m[1] != id {
			t.Errorf("upstream traceparent = %q, want the gateway's new trace %s", seen.Get("Traceparent"), id)
		}
		if got := seen.Get("Tracestate"); got != "" {
			t.Errorf("upstream tracestate = %q, want the client's dropped", got)
		}
		tr := j.trace(t, id, 3)
		all = append(all, tr)
		server(tr, "GET keyed", "")
	})

	t.Run("no credential in any trace", func(t *testing.T) {
		if len(all) == 0 {
			t.Fatal("no trace collected")
		}
		// Everything Jaeger holds for the service, too.
		resp, err := http.Get(j.Query + "/api/traces?service=gw-e2e&limit=1000&lookback=1h")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		texts := []string{string(body)}
		for _, tr := range all {
			texts = append(texts, tr.Raw)
		}
		for _, text := range texts {
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("a trace holds a credential (%d characters: %.12s...)", len(s), s)
				}
			}
			if strings.Contains(text, key.Hash()) {
				t.Errorf("a trace holds the key's hash")
			}
			if strings.Contains(text, "token=") {
				t.Errorf("a trace holds the query string")
			}
		}
	})
}

// TestTracingJaegerIdP: an oauth2 strategy's calls to the identity
// provider are spans of the request that made them (a real zitadel OP):
// the introspection of an opaque token under the strategy's span, and
// never the token.
func TestTracingJaegerIdP(t *testing.T) {
	j := startJaeger(t)
	op := oidctest.Start(t, oidctest.Options{})
	up := newUpstream(t, 0)
	cfg := fmt.Sprintf(`tracing:
  otlp_endpoint: %s
  service_name: gw-e2e-idp
  sample_ratio: 1
strategies:
  sso:
    type: oauth2
    issuer_url: %s
    client_id: %s
    client_secret: ${SSO_SECRET}
    audience: %s
    cache_ttl: 0s
routes:
  - {name: sso, path: /sso, upstream: %s, strategies: [sso]}
`, j.OTLP, op.Issuer, oidctest.GatewayClientID, oidctest.GatewayClientID, up.URL)
	g := startGateway(t, cfg, map[string]string{"SSO_SECRET": oidctest.GatewayClientSecret})
	tok := op.ClientCredentialsToken(t, oidctest.ServiceClientID, oidctest.ServiceClientSecret)
	if r := g.Do(t, req("GET", "/sso/x", bearer(tok), "X-Request-Id: tr-idp")); r.Status != http.StatusOK {
		t.Fatalf("opaque token: status %d (%s)", r.Status, r.Body)
	}
	id, _ := g.Event(t, "tr-idp")["trace_id"].(string)
	tr := j.trace(t, id, 4)
	srv := tr.one(t, "GET sso")
	st := tr.one(t, "strategy sso")
	if st.parent() != srv.SpanID {
		t.Errorf("strategy span's parent %q, want the server span", st.parent())
	}
	intro := tr.byName("idp POST")
	found := false
	for _, s := range intro {
		if strings.HasSuffix(s.OperationName, pathOnly(op.IntrospectionURL)) {
			found = true
			if !tr.descends(s, st) {
				t.Errorf("introspection span %q does not descend from the strategy span", s.OperationName)
			}
			wantTags(t, s, map[string]string{"http.response.status_code": "200", "span.kind": "client"})
		}
	}
	if !found {
		t.Errorf("no introspection span (idp spans: %v)", intro)
	}
	if strings.Contains(tr.Raw, tok) || strings.Contains(tr.Raw, oidctest.GatewayClientSecret) {
		t.Errorf("the trace holds the token or the client secret")
	}
}

// pathOnly is the path of a URL.
func pathOnly(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Path
}
