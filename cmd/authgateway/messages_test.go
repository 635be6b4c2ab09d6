package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestMissingFlagMessages: a missing required flag or argument is named in
// one line, not answered with the whole usage text.
func TestMissingFlagMessages(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"keys", "create", "-roles", "reader"}, "authgateway keys create: -name is required (the key's name; upstreams see it as X-Auth-Subject)\n"},
		{[]string{"keys", "revoke"}, "authgateway keys revoke: the key's ID is required (see authgateway keys list)\n"},
		{[]string{"keys", "list", "extra"}, "authgateway keys list: unexpected argument \"extra\"\n"},
		{[]string{"token", "-roles", "admin"}, "authgateway token: -sub is required (the token's subject; upstreams see it as X-Auth-Subject)\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := runCLI(t, tt.args...)
			if code != exitUsage || stderr != tt.want {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

func TestFormatVersion(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "6696fece3d29e3a99f265ca24be3bd6a1eebcc6b"},
		{Key: "vcs.time", Value: "2026-12-04T05:43:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name, ld string
		info     *debug.BuildInfo
		want     string
	}{
		{"stamped and modified", "", stamped,
			"authgateway dev (commit 6696fece3d29e3a99f265ca24be3bd6a1eebcc6b 2026-12-04T05:43:00Z (modified), go1.26.8)"},
		{"-ldflags version", "v1.4.0", stamped,
			"authgateway v1.4.0 (commit 6696fece3d29e3a99f265ca24be3bd6a1eebcc6b 2026-12-04T05:43:00Z (modified), go1.26.8)"},
		{"go install module@version", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0"}},
			"authgateway v1.3.0 (go1.26.8)"},
		{"clean checkout", "", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}},
			"authgateway dev (commit abc, go1.26.8)"},
		{"no build info", "", nil, "authgateway dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatVersion(tt.ld, tt.info); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
