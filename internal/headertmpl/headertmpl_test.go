package headertmpl

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/strategies"
)

func testIdentity() *strategies.Identity {
	return &strategies.Identity{
		Subject: "alice", Email: "alice@example.com", Roles: []string{"staff", "editor"}, Scopes: []string{"read", "write"},
		ClientID: "cli", Strategy: "jwt",
		Claims: map[string]any{
			"tenant": "acme", "n": float64(1e21), "big": float64(1234567890123), "frac": 1.5, "ok": true,
			"groups": []any{"a", "b", float64(3)}, "org": map[string]any{"id": "o-1", "deep": map[string]any{"x": "y"}},
			"empty": "", "nl": "x\r\nX-Evil: 1", "nested": []any{[]any{"a"}}, "null": nil, "tab": "a\tb",
		},
	}
}

func TestRender(t *testing.T) {
	id := testIdentity()
	tests := []struct {
		tmpl, want string
		ok         bool
	}{
		{"{subject}", "alice", true},
		{"user={email};roles={roles}", "user=alice@example.com;roles=staff,editor", true},
		{"{scopes}", "read write", true},
		{"{client_id}/{strategy}", "cli/jwt", true},
		{"{claims.tenant}", "acme", true},
		{"{claims.big}", "1234567890123", true}, // no exponent
		{"{claims.frac}", "1.5", true},
		{"{claims.ok}", "true", true},
		{"{claims.groups}", "a,b,3", true},
		{"{claims.org.id}", "o-1", true},
		{"{claims.org.deep.x}", "y", true},
		{"{{literal}}", "{literal}", true},
		{"{claims.org}", "", false},       // an object has no header form
		{"{claims.missing}", "", false},   // absent
		{"t-{claims.missing}", "", false}, // never a partial value
		{"{claims.empty}", "", false},
		{"{claims.nl}", "", false}, // CR LF: never sent
		{"{claims.tab}", "", false},
		{"{claims.nested}", "", false},
		{"{claims.null}", "", false},
		{"{claims.tenant.x}", "", false},
	}
	// The same identity as a cached JWT's: its claims deferred, decoded on use.
	payload, err := json.Marshal(id.Claims)
	if err != nil {
		t.Fatal(err)
	}
	deferred := *id
	var dc strategies.DeferredClaims
	dc.Defer(base64.RawURLEncoding.EncodeToString(payload))
	deferred.Claims, deferred.DeferredClaims = nil, &dc
	for _, tt := range tests {
		for name, id := range map[string]*strategies.Identity{"map": id, "deferred": &deferred} {
			t.Run(name+"/"+tt.tmpl, func(t *testing.T) {
				tm, err := Parse(tt.tmpl)
				if err != nil {
					t.Fatal(err)
				}
				got, ok := tm.Append(nil, id)
				if string(got) != tt.want || ok != tt.ok {
					t.Errorf("Append(%q) = %q, %v; want %q, %v", tt.tmpl, got, ok, tt.want, tt.ok)
				}
			})
		}
	}
	tm, _ := Parse("{claims.n}")
	if got, ok := tm.Append(nil, id); !ok || strings.ContainsAny(string(got), "e+") {
		t.Errorf("1e21 = %q, %v; want digits", got, ok)
	}
	tm, _ = Parse("{email}")
	if _, ok := tm.Append(nil, &strategies.Identity{Subject: "x"}); ok {
		t.Error("empty email sent")
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"{sub}", "{subject", "a}b", "{claims.}", "{claims.a..b}", "{claims}", "x\ny", "{Subject}", "{ subject }"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q): no error", s)
		}
	}
}

// BenchmarkRender renders the legacy walkthrough's three headers into one
// reused buffer: the only allocations are the header values' strings, made
// by the caller.
func BenchmarkRender(b *testing.B) {
	id := testIdentity()
	var tmpls []*Template
	for _, s := range []string{"{subject}", "{roles}", "{claims.org.id}"} {
		tm, err := Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		tmpls = append(tmpls, tm)
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		for _, tm := range tmpls {
			if _, ok := tm.Append(buf[:0], id); !ok {
				b.Fatal("not rendered")
			}
		}
	}
}
