package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/tokens"
)

func cmdToken(args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("token", stderr)
	sub := fs.String("sub", "", "subject (required)")
	email := fs.String("email", "", "email")
	roles := fs.String("roles", "", "comma-separated roles")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	ttl := fs.String("ttl", "", "lifetime, at most tokens.access_ttl (default tokens.access_ttl)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	switch {
	case len(pos) > 0:
		fmt.Fprintf(stderr, "authgateway token: unexpected argument %q\n", pos[0])
		return exitUsage
	case *sub == "":
		fmt.Fprintln(stderr, "authgateway token: -sub is required (the token's subject; upstreams see it as X-Auth-Subject)")
		return exitUsage
	}
	var d = parseOptionalDuration(*ttl, stderr)
	if d < 0 {
		return exitUsage
	}
	cfg, ok := loadConfig(*cfgPath, stderr)
	if !ok {
		return exitFailure
	}
	if len(cfg.Tokens.SigningKeys) == 0 {
		fmt.Fprintf(stderr, "%s: tokens.signing_keys is empty: nothing to sign with\n", cfg.Path)
		return exitFailure
	}
	iss, err := tokens.NewIssuer(cfg.Tokens)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cfg.Path, err)
		return exitFailure
	}
	if d > iss.AccessTTL {
		fmt.Fprintf(stderr, "authgateway token: -ttl %s is longer than tokens.access_ttl (%s)\n", d, iss.AccessTTL)
		return exitUsage
	}
	tok, _, _, err := iss.Access(tokens.AccessClaims{
		Subject: *sub, Email: *email, Roles: splitList(*roles), Scopes: splitList(*scopes), TTL: d,
	})
	if err != nil {
		fmt.Fprintf(stderr, "authgateway token: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(stdout, tok)
	return exitOK
}

// parseOptionalDuration returns 0 for "", the duration, or -1 after printing an error.
func parseOptionalDuration(s string, stderr io.Writer) time.Duration {
	if s == "" {
		return 0
	}
	v, err := config.ParseDuration(s)
	if err != nil {
		fmt.Fprintln(stderr, "authgateway:", err)
		return -1
	}
	return v
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
