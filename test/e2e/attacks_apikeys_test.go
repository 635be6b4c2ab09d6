package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// twoKeyStrategiesConfig has two api_key strategies with the same header and
// prefix, each on its own route: partnerKeys on /partner, internalKeys on
// /internal. storeA and storeB are each "redis" or a key file's path.
func twoKeyStrategiesConfig(redisURL, upstream, storeA, storeB string) string {
	store := func(s string) string {
		if s == "redis" {
			return "store: redis"
		}
		return fmt.Sprintf("store: file\n    file: %q", s)
	}
	var b strings.Builder
	if redisURL != "" {
		fmt.Fprintf(&b, "redis:\n  url: %q\n", redisURL)
	}
	fmt.Fprintf(&b, `strategies:
  partnerKeys:
    type: api_key
    header: X-API-Key
    prefixes: [pk_live]
    %s
  internalKeys:
    type: api_key
    header: X-API-Key
    prefixes: [pk_live]
    %s
routes:
  - name: partner
    path: /partner
    upstream: %s
    strategies: [partnerKeys]
  - name: internal
    path: /internal
    upstream: %s
    strategies: [internalKeys]
rate_limits:
  auth_failures: {limit: 100000, period: 1m}
`, store(storeA), store(storeB), upstream, upstream)
	return b.String()
}

// TestAttacksAPIKeyStrategies: API keys belong to the strategy they were
// made for. Two api_key strategies, both in one real Redis with prefix
// pk_live: a key made for partnerKeys must not open internalKeys' route,
// nor be listed, revoked or rotated through internalKeys. And a config in
// which two strategies would read one key file with one prefix is refused.
func TestAttacksAPIKeyStrategies(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, 0)
	g := startGateway(t, twoKeyStrategiesConfig(rs.URL(), up.URL, "redis", "redis"), nil)
	partner := createKey(t, g.ConfigPath, nil, "-strategy", "partnerKeys", "-name", "partner-bot", "-roles", "partner")
	internal := createKey(t, g.ConfigPath, nil, "-strategy", "internalKeys", "-name", "internal-bot", "-roles", "ops")

	// Two strategies reading one key file with one prefix, spelt once
	// absolute and once relative to the config file's directory.
	dir := t.TempDir()
	sharedFile := filepath.Join(dir, "keys.yaml")
	sharedCfg := filepath.Join(dir, "shared-file.yaml")
	if err := os.WriteFile(sharedCfg, []byte(twoKeyStrategiesConfig("", up.URL, sharedFile, "./"+filepath.Base(sharedFile))), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		// raw is a request to the gateway; or action runs instead.
		raw    string
		action func(t *testing.T)
		status int
		// saw is the upstream's X-Auth-* headers of the one request it got;
		// nil: it got nothing.
		saw map[string]string
	}{
		{name: "api_key: partner key on internalKeys' route", raw: req("GET", "/internal/secrets", partner.header()), status: 401},
		{name: "api_key: internal key on partnerKeys' route", raw: req("GET", "/partner/orders", internal.header()), status: 401},
		{name: "control: partner key on its own route", raw: req("GET", "/partner/orders", partner.header()), status: 200,
			saw: map[string]string{"X-Auth-Subject": "partner-bot", "X-Auth-Client-Id": partner.ID, "X-Auth-Roles": "partner", "X-Auth-Strategy": "partnerKeys"}},
		{name: "control: internal key on its own route", raw: req("GET", "/internal/secrets", internal.header()), status: 200,
			saw: map[string]string{"X-Auth-Subject": "internal-bot", "X-Auth-Client-Id": internal.ID, "X-Auth-Roles": "ops", "X-Auth-Strategy": "internalKeys"}},
		{name: "keys list -strategy internalKeys does not list the partner key", action: func(t *testing.T) {
			out := keysCLI(t, g.ConfigPath, nil, "list", "-strategy", "internalKeys").Stdout
			if strings.Contains(out, partner.ID) || strings.Contains(out, "partner-bot") {
				t.Errorf("keys list -strategy internalKeys shows partnerKeys' key:\n%s", out)
			}
			if !strings.Contains(out, internal.ID) {
				t.Errorf("keys list -strategy internalKeys lacks its own key %s:\n%s", internal.ID, out)
			}
		}},
		{name: "keys revoke and rotate through internalKeys cannot reach the partner key", action: func(t *testing.T) {
			for _, args := range [][]string{{"revoke", partner.ID}, {"rotate", partner.ID, "-grace", "0s"}} {
				res := runCLI(t, g.Dir, nil, append(append([]string{"keys"}, args...), "-strategy", "internalKeys", "-config", g.ConfigPath)...)
				if res.Code != 1 || !strings.Contains(res.Stderr, "no such key") {
					t.Errorf("keys %v -strategy internalKeys: exit %d, stderr %q; want 1 and \"no such key\"", args, res.Code, res.Stderr)
				}
			}
			up.Reset()
			if r := g.Do(t, req("GET", "/partner/orders", partner.header())); r.Status != http.StatusOK {
				t.Errorf("partner key after the attempts through internalKeys: status %d, want 200", r.Status)
			}
		}, saw: map[string]string{"X-Auth-Subject": "partner-bot", "X-Auth-Client-Id": partner.ID, "X-Auth-Roles": "partner", "X-Auth-Strategy": "partnerKeys"}},
		{name: "config: two strategies share a key file and a prefix", action: func(t *testing.T) {
			res := runCLI(t, dir, nil, "validate", "-config", sharedCfg)
			// partnerKeys (sorted after internalKeys) is reported, at its file: line 7.
			want := sharedCfg + `:7: strategies.partnerKeys.file: strategy internalKeys reads the same key file with prefix "pk_live"`
			if res.Code != 1 || !strings.HasPrefix(res.Stdout, want) {
				t.Errorf("validate: exit %d, stdout %q; want 1 and a line starting %q", res.Code, res.Stdout, want)
			}
		}},
		{name: "control: strategies share a key file with prefixes of their own", action: func(t *testing.T) {
			body := strings.Replace(twoKeyStrategiesConfig("", up.URL, sharedFile, sharedFile), "prefixes: [pk_live]", "prefixes: [pk_partner]", 1)
			p := writeConfig(t, "own-prefixes.yaml", body)
			if res := runCLI(t, dir, nil, "validate", "-config", p); res.Code != 0 {
				t.Errorf("validate: exit %d, want 0\n%s%s", res.Code, res.Stdout, res.Stderr)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up.Reset()
			if tc.action != nil {
				tc.action(t)
			} else {
				id := "key-row-" + strconv.Itoa(i)
				raw := withID(tc.raw, id)
				ex := g.explain(t, raw, "127.0.0.1")
				r := g.Do(t, raw)
				if r.Status != tc.status {
					t.Fatalf("status = %d, want %d (body %q)", r.Status, tc.status, r.Body)
				}
				if r.Status >= 400 {
					wantRefused(t, tc.name, r)
				}
				explainAgrees(t, g, ex, id, r)
			}
			if tc.saw == nil {
				up.WantNothing(t)
				return
			}
			got := authHeaders(up.One(t).Header)
			if len(got) != len(tc.saw) {
				t.Errorf("upstream X-Auth headers = %v, want exactly %v", got, tc.saw)
			}
			for k, v := range tc.saw {
				if got[k] != v {
					t.Errorf("upstream %s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}
