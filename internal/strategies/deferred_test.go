package strategies

import (
	"encoding/base64"
	"reflect"
	"testing"
)

// TestDeferredClaims: claims decode as the JWT parser decodes them, once;
// a payload that does not decode gives no claims (a route reading one
// then finds none and denies), never a panic.
func TestDeferredClaims(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"a","n":1,"roles":["x"],"org":{"id":"o"}}`))
	id := &Identity{DeferredClaims: deferClaims(payload)}
	want := map[string]any{"sub": "a", "n": float64(1), "roles": []any{"x"}, "org": map[string]any{"id": "o"}}
	got := id.ClaimMap()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("claims %v; want %v", got, want)
	}
	cp := *id
	if reflect.ValueOf(cp.ClaimMap()).Pointer() != reflect.ValueOf(got).Pointer() {
		t.Error("a copy of the identity decoded the claims again")
	}
	withMap := &Identity{Claims: map[string]any{"k": "v"}, DeferredClaims: deferClaims(payload)}
	if withMap.ClaimMap()["k"] != "v" {
		t.Error("Claims, when set, are the claims")
	}
	for _, bad := range []string{"!!!", base64.RawURLEncoding.EncodeToString([]byte(`{"a":`)), base64.RawURLEncoding.EncodeToString([]byte(`[1]`))} {
		if m := (&Identity{DeferredClaims: deferClaims(bad)}).ClaimMap(); m != nil {
			t.Errorf("payload %q decoded to %v; want none", bad, m)
		}
	}
	if (&Identity{}).ClaimMap() != nil {
		t.Error("no claims at all answered some")
	}
}

func deferClaims(payload string) *DeferredClaims {
	var d DeferredClaims
	d.Defer(payload)
	return &d
}
