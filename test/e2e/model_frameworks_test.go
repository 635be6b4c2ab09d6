package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Models of how real frameworks read a forwarded request. A header the
// gateway lets through matters only if a framework behind it trusts it, and
// frameworks read headers in their own ways: Python's wsgiref folds "_" and
// "-" into one environ key and joins the values in wire order, Werkzeug's
// ProxyFix trusts the last X-Forwarded-* value, Express's method-override
// runs another handler than the request's method. Each model below follows
// the framework's source in a few lines and answers with what it concluded,
// as JSON, so that an attack row asserts what the upstream would have served.

// wireField is one header field as it came off the wire.
type wireField struct{ Name, Value string }

// wireRequest is a request as a framework's own parser sees it: the header
// fields in wire order, before any map merges them.
type wireRequest struct {
	Method, Target, Peer string
	Fields               []wireField
}

// modelAnswer is what a model upstream answers: what it concluded, and the
// fields it was given (for exact assertions on what the gateway forwarded).
type modelAnswer struct {
	Concluded map[string]string `json:"concluded"`
	Fields    []wireField       `json:"fields"`
}

// modelUpstream is a framework model behind the gateway. It serves with
// Go's HTTP server (framing, bodies) but reads the header block from the
// connection's bytes, because the order of fields across names decides
// which value a CGI-style framework takes. Keep-alives are off so that each
// connection carries exactly one request.
type modelUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*wireRequest
}

type teeConnKey struct{}

func newModelUpstream(t *testing.T, model func(*wireRequest) map[string]string) *modelUpstream {
	t.Helper()
	u := &modelUpstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _ := r.Context().Value(teeConnKey{}).(*teeConn)
		wr, ok := conn.request()
		if !ok {
			http.Error(w, "model: no complete header block on the connection", http.StatusInternalServerError)
			return
		}
		u.mu.Lock()
		u.seen = append(u.seen, wr)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(modelAnswer{Concluded: model(wr), Fields: wr.Fields})
	}))
	u.Listener = teeListener{u.Listener}
	u.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, teeConnKey{}, c)
	}
	u.Config.SetKeepAlivesEnabled(false)
	u.Start()
	t.Cleanup(u.Close)
	return u
}

// Requests returns what the model received so far.
func (u *modelUpstream) Requests() []*wireRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

// Reset forgets the recorded requests.
func (u *modelUpstream) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seen = nil
}

type teeListener struct{ net.Listener }

func (l teeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &teeConn{Conn: c}, nil
}

// teeConn keeps every byte read from the connection.
type teeConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// request parses the connection's one header block in wire order. Go's
// server has already accepted it, so only the split is left to do.
func (c *teeConn) request() (*wireRequest, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	raw := c.buf.String()
	c.mu.Unlock()
	head, _, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		return nil, false
	}
	lines := strings.Split(head, "\r\n")
	parts := strings.SplitN(lines[0], " ", 3)
	if len(parts) != 3 {
		return nil, false
	}
	wr := &wireRequest{Method: parts[0], Target: parts[1], Peer: c.RemoteAddr().String()}
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ":")
		wr.Fields = append(wr.Fields, wireField{Name: name, Value: strings.TrimSpace(value)})
	}
	return wr, true
}

// cgiEnviron builds the environ as Python's wsgiref.simple_server does
// (WSGIRequestHandler.get_environ, CPython 3.13): each field's name
// upper-cased with "-" replaced by "_"; a key already set (CONTENT_TYPE,
// CONTENT_LENGTH, REMOTE_ADDR, REQUEST_METHOD, ...) is skipped; the first
// field of a key sets HTTP_<key>, later ones are appended after a comma,
// in wire order. So "X_Forwarded_For" and "X-Forwarded-For" land in one key,
// the later field last. (Django's runserver drops names with "_"; wsgiref
// does not.)
func cgiEnviron(r *wireRequest) map[string]string {
	path, query, _ := strings.Cut(r.Target, "?")
	peer, _, _ := net.SplitHostPort(r.Peer)
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	env := map[string]string{
		"SERVER_NAME": "model", "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PORT": "80", "REMOTE_HOST": "",
		"CONTENT_LENGTH": "", "SCRIPT_NAME": "", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_SOFTWARE": "WSGIServer/0.2",
		"REQUEST_METHOD": r.Method, "PATH_INFO": path, "QUERY_STRING": query, "REMOTE_ADDR": peer,
		"CONTENT_TYPE": "text/plain", "wsgi.url_scheme": "http",
	}
	// self.headers.get() is case-insensitive and takes the first field.
	for _, f := range r.Fields {
		if strings.EqualFold(f.Name, "Content-Type") {
			env["CONTENT_TYPE"] = f.Value
			break
		}
	}
	for _, f := range r.Fields {
		if strings.EqualFold(f.Name, "Content-Length") {
			if f.Value != "" {
				env["CONTENT_LENGTH"] = f.Value
			}
			break
		}
	}
	for _, f := range r.Fields {
		k := strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if _, ok := env[k]; ok {
			continue
		}
		if v, ok := env["HTTP_"+k]; ok {
			env["HTTP_"+k] = v + "," + f.Value
		} else {
			env["HTTP_"+k] = f.Value
		}
	}
	return env
}

// httpEnviron is the HTTP_* part of the environ: every header the upstream
// received, however it was spelt.
func httpEnviron(fields []wireField) map[string]string {
	out := map[string]string{}
	for k, v := range cgiEnviron(&wireRequest{Method: "GET", Target: "/", Peer: "127.0.0.1:1", Fields: fields}) {
		if strings.HasPrefix(k, "HTTP_") {
			out[k] = v
		}
	}
	return out
}

// proxyFixModel is a Flask app on wsgiref behind ProxyFix(x_for=1,
// x_proto=1, x_host=1, x_port=1, x_prefix=1) — one trusted proxy, the
// gateway. Werkzeug's ProxyFix takes the last value of each comma-separated
// X-Forwarded-* environ key. It reports the client address, scheme, host
// and mount prefix the app concluded (what it puts in password-reset links
// and access decisions).
func proxyFixModel(r *wireRequest) map[string]string {
	env := cgiEnviron(r)
	last := func(key string) string {
		v := env[key]
		if v == "" {
			return ""
		}
		parts := strings.Split(v, ",")
		return strings.TrimSpace(parts[len(parts)-1])
	}
	if v := last("HTTP_X_FORWARDED_FOR"); v != "" {
		env["REMOTE_ADDR"] = v
	}
	if v := last("HTTP_X_FORWARDED_PROTO"); v != "" {
		env["wsgi.url_scheme"] = v
	}
	if v := last("HTTP_X_FORWARDED_HOST"); v != "" {
		env["HTTP_HOST"] = v
	}
	if v := last("HTTP_X_FORWARDED_PORT"); v != "" {
		if host := env["HTTP_HOST"]; host != "" {
			if strings.Contains(host, ":") && !strings.HasSuffix(host, "]") {
				host = host[:strings.LastIndex(host, ":")]
			}
			env["HTTP_HOST"] = host + ":" + v
		}
	}
	if v := last("HTTP_X_FORWARDED_PREFIX"); v != "" {
		env["SCRIPT_NAME"] = v
	}
	return map[string]string{"remote_addr": env["REMOTE_ADDR"], "scheme": env["wsgi.url_scheme"],
		"host": env["HTTP_HOST"], "script_name": env["SCRIPT_NAME"]}
}

// nodeMethods is Node's http.METHODS: what method-override's supports()
// accepts (case-insensitively).
var nodeMethods = []string{"ACL", "BIND", "CHECKOUT", "CONNECT", "COPY", "DELETE", "GET", "HEAD", "LINK", "LOCK",
	"M-SEARCH", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MOVE", "NOTIFY", "OPTIONS", "PATCH", "POST",
	"PROPFIND", "PROPPATCH", "PURGE", "PUT", "QUERY", "REBIND", "REPORT", "SEARCH", "SOURCE", "SUBSCRIBE",
	"TRACE", "UNBIND", "UNLINK", "UNLOCK", "UNSUBSCRIBE"}

// rackMethods is Rack::MethodOverride::HTTP_METHODS.
var rackMethods = []string{"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "LINK", "UNLINK"}

// methodOverrideModel reports which handler two method-override stacks
// would run:
//
//   - express: method-override 3.x as its README's "multiple format
//     support" stacks it — methodOverride('X-HTTP-Method'),
//     ('X-HTTP-Method-Override'), ('X-Method-Override') and ('_method') for
//     the query — each only on an original POST, the last one that names a
//     Node method winning. Node lower-cases header names (no "_" folding)
//     and joins repeated fields with ", "; the getter takes the part before
//     the first comma. querystring.parse decodes the query's keys and
//     values; a repeated key gives an array, whose first value is used.
//   - rack: Rack::MethodOverride on a CGI-style environ: on POST,
//     HTTP_X_HTTP_METHOD_OVERRIDE upper-cased, if one of Rack's methods
//     (the form field _method is in the body; bodies are not modelled).
func methodOverrideModel(r *wireRequest) map[string]string {
	express := r.Method
	if r.Method == http.MethodPost {
		node := map[string]string{}
		for _, f := range r.Fields {
			k := strings.ToLower(f.Name)
			if v, ok := node[k]; ok {
				node[k] = v + ", " + f.Value
			} else {
				node[k] = f.Value
			}
		}
		for _, h := range []string{"x-http-method", "x-http-method-override", "x-method-override"} {
			v, _, _ := strings.Cut(node[h], ",")
			if v = strings.TrimSpace(v); v != "" && slices.Contains(nodeMethods, strings.ToUpper(v)) {
				express = strings.ToUpper(v)
			}
		}
		_, rawQuery, _ := strings.Cut(r.Target, "?")
		if q, err := url.ParseQuery(rawQuery); err == nil {
			if v := q["_method"]; len(v) > 0 && slices.Contains(nodeMethods, strings.ToUpper(v[0])) {
				express = strings.ToUpper(v[0])
			}
		}
	}
	rack := r.Method
	if r.Method == http.MethodPost {
		if v := strings.ToUpper(cgiEnviron(r)["HTTP_X_HTTP_METHOD_OVERRIDE"]); slices.Contains(rackMethods, v) {
			rack = v
		}
	}
	return map[string]string{"express": express, "rack": rack}
}

// legacyModel is a legacy app (PHP or CGI-style, reading $_SERVER) that
// trusts a proxy for who the user is and which path was asked for: the user
// from Remote-User, X-Remote-User, X-WEBAUTH-USER (Grafana's auth proxy),
// X-Forwarded-User or X-Forwarded-Email (oauth2-proxy), the groups from
// X-Forwarded-Groups, the path from X-Original-URL or X-Rewrite-URL (IIS
// rewrite, Zend Framework 1), X-Forwarded-Uri/-Path, X-Envoy-Original-Path
// and the mount point from X-Forwarded-Prefix. "" means anonymous.
func legacyModel(r *wireRequest) map[string]string {
	env := cgiEnviron(r)
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := env["HTTP_"+k]; v != "" {
				return v
			}
		}
		return ""
	}
	path := first("X_ORIGINAL_URL", "X_REWRITE_URL", "X_ORIGINAL_URI", "X_FORWARDED_URI", "X_FORWARDED_PATH", "X_ENVOY_ORIGINAL_PATH")
	if path == "" {
		path = env["PATH_INFO"]
	}
	return map[string]string{
		"user":   first("REMOTE_USER", "X_REMOTE_USER", "X_WEBAUTH_USER", "X_FORWARDED_USER", "X_FORWARDED_EMAIL", "X_FORWARDED_PREFERRED_USERNAME", "X_AUTH_REQUEST_USER"),
		"groups": first("X_FORWARDED_GROUPS", "X_AUTH_REQUEST_GROUPS"),
		"path":   path,
		"prefix": first("X_FORWARDED_PREFIX"),
	}
}
