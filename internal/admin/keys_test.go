package admin

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/apikey"
)

// TestKeysAPI drives the key actions as an API client (Bearer, JSON) on a
// real file store, through the manager the `keys` CLI uses: create shows
// the key once, rotate gives a new key and keeps the old one for the
// grace, revoke ends it, and the page lists the keys without any secret.
func TestKeysAPI(t *testing.T) {
	store, err := apikey.NewFileStore(filepath.Join(t.TempDir(), "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := apikey.NewManager(store, apikey.ManagerOptions{Prefixes: []string{"pk_test"}})
	var events []string
	h := New(Options{
		Token: testToken,
		View:  func(context.Context) View { return View{KeyStrategies: []string{"keys"}} },
		Keys: func(_ context.Context, name string) (KeyManager, error) {
			if name != "keys" {
				t.Errorf("strategy %q asked for", name)
			}
			return m, nil
		},
		OnKeyEvent: func(ev, strategy, id, _ string) { events = append(events, ev+" "+id) },
	})
	api := map[string]string{"Authorization": "Bearer " + testToken, "Accept": "application/json"}
	call := func(path string, form url.Values) map[string]string {
		t.Helper()
		form.Set("strategy", "keys")
		w := do(t, h, "POST", path, form, api)
		if w.Code != 200 {
			t.Fatalf("POST %s: %d %s", path, w.Code, w.Body.String())
		}
		var out map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		return out
	}
	created := call("/keys/create", url.Values{"name": {"ci"}, "roles": {"a, b"}, "prefix": {"pk_test"}})
	if !strings.HasPrefix(created["key"], "pk_test_") || created["id"] == "" {
		t.Fatalf("create = %v", created)
	}
	rotated := call("/keys/rotate", url.Values{"id": {created["id"]}, "grace": {"1h"}})
	if rotated["replaces"] != created["id"] || rotated["key"] == created["key"] {
		t.Fatalf("rotate = %v", rotated)
	}
	call("/keys/revoke", url.Values{"id": {rotated["id"]}})
	recs, err := m.List(context.Background())
	if err != nil || len(recs) != 2 {
		t.Fatalf("list: %d records (%v), want 2", len(recs), err)
	}
	for _, r := range recs {
		if strings.Join(r.Roles, ",") != "a,b" {
			t.Errorf("key %s roles %v, want [a b]", r.ID, r.Roles)
		}
		if (r.ID == rotated["id"]) != r.Revoked() {
			t.Errorf("key %s revoked = %v", r.ID, r.Revoked())
		}
	}
	if len(events) != 3 {
		t.Errorf("key events = %v, want created, rotated, revoked", events)
	}
	page := do(t, h, "GET", "/", nil, map[string]string{"Authorization": "Bearer " + testToken}).Body.String()
	for _, id := range []string{created["id"], rotated["id"]} {
		if !strings.Contains(page, id) {
			t.Errorf("the page does not list %s", id)
		}
	}
	for _, secret := range []string{created["key"], rotated["key"], recs[0].Hash, recs[1].Hash} {
		if strings.Contains(page, secret) {
			t.Errorf("the page shows a key or its hash")
		}
	}
	if w := do(t, h, "POST", "/keys/revoke", url.Values{"strategy": {"keys"}, "id": {"key_nosuchkey000"}}, api); w.Code != 400 || !strings.Contains(w.Body.String(), "no such key") {
		t.Errorf("revoking an unknown key: %d %s", w.Code, w.Body.String())
	}
}
