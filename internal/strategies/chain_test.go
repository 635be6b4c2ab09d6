package strategies

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fixed struct {
	id  *Identity
	err error
}

func (f fixed) Authenticate(context.Context, *http.Request) (*Identity, error) { return f.id, f.err }

func TestChain(t *testing.T) {
	idA := &Identity{Subject: "a"}
	tests := []struct {
		name        string
		chain       []Named
		wantSubject string
		wantInvalid bool
		wantErr     bool
		wantReason  Reason
	}{
		{"first identity wins", []Named{{"x", fixed{id: idA}}, {"y", fixed{id: &Identity{Subject: "b"}}}}, "a", false, false, ""},
		{"no credentials then identity", []Named{{"x", fixed{err: ErrNoCredentials}}, {"y", fixed{id: idA}}}, "a", false, false, ""},
		{"invalid then identity (layered: opaque token after jwt)", []Named{{"x", fixed{err: Invalid("malformed_token", nil)}}, {"y", fixed{id: idA}}}, "a", false, false, ""},
		{"all no credentials", []Named{{"x", fixed{err: ErrNoCredentials}}, {"y", fixed{err: ErrNoCredentials}}}, "", false, false, "no_credentials"},
		{"invalid is remembered", []Named{{"x", fixed{err: ErrNoCredentials}}, {"y", fixed{err: Invalid("expired", nil)}}}, "", true, false, "expired"},
		{"technical error fails closed", []Named{{"x", fixed{err: errors.New("redis down")}}}, "", false, true, "strategy_error"},
		{"nil identity and nil error fails closed", []Named{{"x", fixed{}}}, "", false, true, "strategy_error"},
		{"final invalid stops the chain (own expired token not sent to the next)", []Named{
			{"x", fixed{err: &InvalidError{Reason: "expired", Final: true}}}, {"y", fixed{id: idA}}}, "", true, false, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Run(context.Background(), tt.chain, httptest.NewRequest("GET", "/", nil), true)
			if tt.wantSubject != "" {
				if res.Identity == nil || res.Identity.Subject != tt.wantSubject {
					t.Fatalf("identity = %+v, want subject %q", res.Identity, tt.wantSubject)
				}
				return
			}
			if res.Identity != nil {
				t.Fatalf("want no identity, got %+v", res.Identity)
			}
			if res.Invalid != tt.wantInvalid || (res.Err != nil) != tt.wantErr || res.Reason != tt.wantReason {
				t.Errorf("got invalid=%v err=%v reason=%q", res.Invalid, res.Err, res.Reason)
			}
			if want := len(tt.chain); !strings.HasPrefix(tt.name, "final") && len(res.Outcomes) != want {
				t.Errorf("outcomes = %d, want %d", len(res.Outcomes), len(tt.chain))
			}
		})
	}
}

// TestChainRefusesSpaceAround: a subject, email or client id with white
// space around it would read one way in the gateway and another after HTTP
// trimmed it: refused and counted, whichever strategy produced it.
func TestChainRefusesSpaceAround(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   Identity
		ok   bool
	}{
		{"clean", Identity{Subject: "root", Email: "root@example.com", ClientID: "console"}, true},
		{"space inside", Identity{Subject: "ro ot", Email: "r@example.com"}, true},
		{"leading space", Identity{Subject: " root"}, false},
		{"trailing spaces", Identity{Subject: "root  "}, false},
		{"no-break space", Identity{Subject: "root\u00a0"}, false},
		{"ideographic space", Identity{Subject: "\u3000root"}, false},
		{"line separator", Identity{Subject: "root\u2028"}, false},
		{"next line", Identity{Subject: "\u0085root"}, false},
		{"byte order mark", Identity{Subject: "\ufeffroot"}, false},
		{"zero-width space", Identity{Subject: "root\u200b"}, false},
		{"mongolian vowel separator", Identity{Subject: "\u180eroot"}, false},
		{"email", Identity{Subject: "root", Email: "root@example.com "}, false},
		{"client id", Identity{Subject: "root", ClientID: " console"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			res := Run(context.Background(), []Named{{"x", fixed{id: &id}}}, httptest.NewRequest("GET", "/", nil), false)
			if tc.ok != (res.Identity != nil) {
				t.Fatalf("identity %+v: got %+v, want accepted=%v", tc.id, res.Identity, tc.ok)
			}
			if !tc.ok && (!res.Invalid || res.Reason != "bad_identity_value") {
				t.Fatalf("invalid=%v reason=%q; want an invalid credential, bad_identity_value", res.Invalid, res.Reason)
			}
		})
	}
}
