package policy

import (
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/strategies"
)

func testEnv(t testing.TB) *Env {
	t.Helper()
	env, err := NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func testInput() *Input {
	return &Input{
		Identity: &strategies.Identity{
			Subject: "alice", Email: "alice@example.com", Roles: []string{"staff", "ops"}, Scopes: []string{"read", "write"},
			ClientID: "cli", Strategy: "jwt",
			Claims: map[string]any{"tenant": "a", "level": float64(3), "groups": []any{"x", "y"}, "org": map[string]any{"id": "o1"}},
		},
		Method: "GET", Path: "/legacy/items", Host: "legacy.example.com",
		ClientIP: netip.MustParseAddr("10.1.2.3"),
		Header:   http.Header{"X-Tenant": {"a", "b"}, "User-Agent": {"curl"}},
		RawQuery: "page=2&page=3&q=a%20b",
		Now:      time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC),
	}
}

// Every variable and field, read as DESIGN.md declares it.
func TestEvalVariables(t *testing.T) {
	env := testEnv(t)
	for _, expr := range []string{
		`identity.subject == "alice"`,
		`identity.email.endsWith("@example.com")`,
		`"ops" in identity.roles && identity.roles.size() == 2`,
		`identity.scopes == ["read", "write"]`,
		`identity.client_id == "cli" && identity.strategy == "jwt"`,
		`identity.claims.tenant == "a"`,
		`identity.claims["level"] == 3`,
		`identity.claims.level >= 2.5`,
		`"y" in identity.claims.groups`,
		`identity.claims.org.id == "o1"`,
		`has(identity.claims.tenant) && !has(identity.claims.missing)`,
		`has(identity.email)`,
		`request.method == "GET" && request.path.startsWith("/legacy/")`,
		`request.host == "legacy.example.com"`,
		`request.client_ip == "10.1.2.3"`,
		`ip_in(request.client_ip, "10.0.0.0/8") && !ip_in(request.client_ip, "192.168.0.0/16")`,
		`request.headers["x-tenant"] == "a"`,      // first value
		`request.headers["user-agent"] == "curl"`, // lower-case names
		`!("X-Tenant" in request.headers)`,
		`request.query.page == "2" && request.query.q == "a b"`,
		`now > timestamp("2026-01-01T00:00:00Z") && now.getHours() == 9`,
		`identity.roles.exists(r, r == "ops")`,
	} {
		t.Run(expr, func(t *testing.T) {
			p, err := env.Compile(expr)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			ok, err := p.Eval(testInput())
			if err != nil || !ok {
				t.Errorf("Eval = %v, %v; want true, nil", ok, err)
			}
		})
	}
}

// Expressions that are false, or fail, for the input: both deny.
func TestEvalDenies(t *testing.T) {
	env := testEnv(t)
	for _, tc := range []struct{ expr, errPart string }{
		{`identity.email.endsWith("@other.com")`, ""},
		{`"admin" in identity.roles`, ""},
		// A claim the credential lacks is an error, never a silent false
		// turned true by a negation.
		{`identity.claims.department == "x"`, "no such key"},
		{`!(identity.claims.department == "x")`, "no such key"},
		{`identity.claims.tenant == "a" && identity.claims.nope == 1`, "no such key"},
		{`request.headers["x-missing"] == ""`, "no such key"},
		{`ip_in(request.headers["user-agent"], "10.0.0.0/8")`, "invalid ip"},
		{`ip_in(request.client_ip, identity.claims.tenant)`, "invalid cidr"},
		// A dyn claim of the wrong type.
		{`identity.claims.tenant > 2`, "no such overload"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			p, err := env.Compile(tc.expr)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			ok, err := p.Eval(testInput())
			if ok {
				t.Fatalf("Eval allowed")
			}
			if tc.errPart == "" && err != nil || tc.errPart != "" && (err == nil || !strings.Contains(err.Error(), tc.errPart)) {
				t.Errorf("Eval error = %v; want %q", err, tc.errPart)
			}
		})
	}
}

// No identity (or no claims): fields are empty, claims lookups fail.
func TestEvalEmptyIdentity(t *testing.T) {
	env := testEnv(t)
	in := &Input{}
	for expr, want := range map[string]bool{
		`identity.subject == ""`:        true,
		`!has(identity.email)`:          true,
		`identity.roles.size() == 0`:    true,
		`!has(identity.claims.tenant)`:  true,
		`request.headers.size() == 0`:   true,
		`request.client_ip == ""`:       true,
		`identity.claims.tenant == "a"`: false,
		`now == timestamp(0)`:           false,
		`request.query.size() == 0`:     true,
		`"x" in identity.scopes`:        false,
		`identity.claims.size() == 0`:   true,
	} {
		p, err := env.Compile(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got, _ := p.Eval(in); got != want {
			t.Errorf("%s = %v; want %v", expr, got, want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	env := testEnv(t)
	for _, tc := range []struct{ expr, want string }{
		{`identity.email + 1`, "column 16: found no matching overload for '_+_'"},
		{`identity.emial == "x"`, "undefined field 'emial'"},
		{`user.email == "x"`, "undeclared reference to 'user'"},
		{`request.headers["x"] == 1`, "no matching overload"},
		{`identity.email`, "must be a bool expression, is string"},
		{`identity.claims.admin`, "must be a bool expression, is dyn"},
		{`ip_in(request.client_ip, "10.0.0.0/33")`, `ip_in: invalid cidr "10.0.0.0/33"`},
		{`ip_in(request.client_ip, "10.0.0.1/8")`, "did you mean 10.0.0.0/8"},
		{`ip_in("not-an-ip", "10.0.0.0/8")`, "invalid ip address"},
		{`ip_in(request.client_ip)`, "no matching overload"},
		{`request.path.matches("(")`, "invalid matches argument"},
		{`identity.roles.all(a, identity.roles.all(b, identity.roles.all(c, a == c)))`, "nesting"},
		{`identity.subject == `, "Syntax error"},
		{"  ", "empty expression"},
		{`[1,2,3].map(x, [1,2,3,4,5,6,7,8,9,10].map(y, "a".repeat(1)))` + strings.Repeat(` || true`, 1), ""},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := env.Compile(tc.expr)
			if tc.want == "" {
				return // only must not panic
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compile error = %v; want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestIPIn(t *testing.T) {
	for _, tc := range []struct {
		ip, cidr string
		want     bool
		err      bool
	}{
		{"10.1.2.3", "10.0.0.0/8", true, false},
		{"11.1.2.3", "10.0.0.0/8", false, false},
		{"::ffff:10.1.2.3", "10.0.0.0/8", true, false}, // IPv4-mapped counts as IPv4
		{"2001:db8::1", "2001:db8::/32", true, false},
		{"10.1.2.3", "2001:db8::/32", false, false},
		{"10.1.2.3", "0.0.0.0/0", true, false},
		{"", "10.0.0.0/8", false, true},
		{"10.1.2.3 ", "10.0.0.0/8", false, true},
		{"010.1.2.3", "10.0.0.0/8", false, true}, // octal-looking: refused, not guessed
		{"10.1.2.3", "10.0.0.0", false, true},
		{"10.1.2.3", "::ffff:10.0.0.0/104", false, true},
	} {
		env := testEnv(t)
		p, err := env.Compile(`ip_in(request.headers["ip"], request.headers["cidr"])`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Eval(&Input{Header: http.Header{"Ip": {tc.ip}, "Cidr": {tc.cidr}}})
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ip_in(%q, %q) = %v, %v; want %v, error %v", tc.ip, tc.cidr, got, err, tc.want, tc.err)
		}
	}
}

// An expression that would loop over a large input stops at the cost
// limit, with an error (deny), instead of burning CPU.
func TestCostLimit(t *testing.T) {
	env := testEnv(t)
	p, err := env.Compile(`identity.roles.exists(r, identity.roles.exists(s, r + s == "never"))`)
	if err != nil {
		t.Fatal(err)
	}
	roles := make([]string, 500)
	for i := range roles {
		roles[i] = strings.Repeat("r", 20)
	}
	ok, err := p.Eval(&Input{Identity: &strategies.Identity{Roles: roles}})
	if ok || err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("Eval = %v, %v; want the cost limit's error", ok, err)
	}
	// A small input passes under the same limit.
	if _, err := p.Eval(&Input{Identity: &strategies.Identity{Roles: []string{"a", "b"}}}); err != nil {
		t.Errorf("small input: %v", err)
	}
}

func TestCompilerSharesPrograms(t *testing.T) {
	c := NewCompiler(testEnv(t))
	a, err := c.Compile(`"ops" in identity.roles`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Compile(`"ops" in identity.roles`)
	if a != b || a.Source() != `"ops" in identity.roles` {
		t.Errorf("same text compiled twice")
	}
	if _, err := c.Compile(`bad +`); err == nil {
		t.Errorf("bad expression compiled")
	}
}

// An Input evaluated by several programs (the same request) builds its
// header map once; separate Inputs never share one.
func TestInputKeepsMaps(t *testing.T) {
	env := testEnv(t)
	p, _ := env.Compile(`request.headers["x-tenant"] == "a"`)
	in := testInput()
	for range 2 {
		if ok, err := p.Eval(in); !ok || err != nil {
			t.Fatalf("Eval = %v, %v", ok, err)
		}
	}
	other := testInput()
	other.Header = http.Header{"X-Tenant": {"b"}}
	if ok, _ := p.Eval(other); ok {
		t.Errorf("another request's headers were reused")
	}
}

// TestReadmeExamples compiles every allow_if of the README's policy
// section and the shipped config, as printed.
func TestReadmeExamples(t *testing.T) {
	env := testEnv(t)
	for _, file := range []string{"../../README.md", "../../configs/gateway.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if i := strings.Index(text, "## Policies (allow_if)"); i >= 0 {
			text = text[i:]
			text = text[:strings.Index(text, "\n## Logs")]
		}
		found := regexp.MustCompile(`allow_if: '(.*)'`).FindAllStringSubmatch(text, -1)
		if len(found) == 0 {
			t.Fatalf("%s: no allow_if example", file)
		}
		for _, m := range found {
			expr := strings.ReplaceAll(m[1], "''", "'")
			if _, err := env.Compile(expr); err != nil {
				t.Errorf("%s: %s: %v", file, expr, err)
			}
		}
	}
}
