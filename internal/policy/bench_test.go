package policy

import "testing"

// BenchmarkEval is one evaluation over a fresh Input per request (as the
// gateway does): the typical expression over the identity, and one
// reading a claim, a header and the query.
func BenchmarkEval(b *testing.B) {
	env := testEnv(b)
	for _, bc := range []struct{ name, expr string }{
		{"typical", `identity.email.endsWith("@example.com") || "ops" in identity.roles`},
		{"headers_claims", `identity.claims.tenant == "a" && request.headers["user-agent"] == "curl" && request.query.page == "2"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := env.Compile(bc.expr)
			if err != nil {
				b.Fatal(err)
			}
			base := testInput()
			b.ReportAllocs()
			for b.Loop() {
				in := Input{Identity: base.Identity, Method: base.Method, Path: base.Path, Host: base.Host,
					ClientIP: base.ClientIP, Header: base.Header, RawQuery: base.RawQuery, Now: base.Now}
				if ok, err := p.Eval(&in); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
