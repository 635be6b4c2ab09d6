package introspect

import (
	"reflect"
	"testing"
	"time"
)

// TestResultClaims: the claims map holds every member of the answer under
// its own name, as encoding/json would decode it, and is built once.
func TestResultClaims(t *testing.T) {
	c := &Client{now: func() time.Time { return time.Unix(1000, 0) }}
	e, err := c.judge([]byte(`{"active":true,"sub":"alice","client_id":"cli","scope":"a b","aud":["x","y"],
		"exp":2000,"tenant":"acme","realm_access":{"roles":["r1"]}}`))
	if err != nil || e.Result == nil {
		t.Fatalf("judge: %v %+v", err, e)
	}
	got := e.Result.Claims()
	want := map[string]any{"active": true, "sub": "alice", "client_id": "cli", "scope": "a b",
		"aud": []any{"x", "y"}, "exp": float64(2000), "tenant": "acme",
		"realm_access": map[string]any{"roles": []any{"r1"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("claims\n got %#v\nwant %#v", got, want)
	}
	got["x"] = 1 // shared: a second call answers the same map
	if _, ok := e.Result.Claims()["x"]; !ok {
		t.Error("Claims built a new map on the second call")
	}
}
