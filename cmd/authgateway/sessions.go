package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/authgateway/authgateway/internal/audit"
	"github.com/authgateway/authgateway/internal/redisconn"
	"github.com/authgateway/authgateway/internal/session"
	"github.com/authgateway/authgateway/internal/tokens"
)

const sessionsUsage = `usage:
  authgateway sessions list -sub S      the browser sessions of subject S (no token is shown)
  authgateway sessions revoke -sub S    end every session of subject S on every replica
`

// cmdSessions lists or revokes the browser sessions of a subject in the
// shared store (Redis): the gateways' session families and denylist, which
// every replica follows.
func cmdSessions(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		fmt.Fprint(stderr, sessionsUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs, cfgPath := newFlags("sessions "+sub, stderr)
	subject := fs.String("sub", "", "the subject whose sessions to "+sub+" (required)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "authgateway sessions %s: unexpected argument %q\n", sub, pos[0])
		return exitUsage
	}
	if *subject == "" {
		fmt.Fprintf(stderr, "authgateway sessions %s: -sub is required\n", sub)
		return exitUsage
	}
	cfg, ok := loadConfig(*cfgPath, stderr)
	if !ok {
		return exitFailure
	}
	if cfg.Redis.URL == "" {
		fmt.Fprintln(stderr, "authgateway sessions: without redis.url the sessions live in the gateway process; restart it to end them all")
		return exitFailure
	}
	if len(cfg.Tokens.SigningKeys) == 0 {
		fmt.Fprintf(stderr, "%s: tokens.signing_keys is empty: the gateway has no sessions\n", cfg.Path)
		return exitFailure
	}
	iss, err := tokens.NewIssuer(cfg.Tokens)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway sessions: %v\n", err)
		return exitFailure
	}
	rc, err := redisconn.New(cfg.Redis.URL)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway sessions: %v\n", err)
		return exitFailure
	}
	defer rc.Close()
	// DryRun: no denylist subscription of its own; a revocation is
	// published to the replicas' subscriptions all the same.
	m, err := session.New(session.Options{Issuer: iss, Redis: rc, DryRun: true})
	if err != nil {
		fmt.Fprintf(stderr, "authgateway sessions: %v\n", err)
		return exitFailure
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	if sub == "list" {
		infos, err := m.List(ctx, *subject)
		if err != nil {
			fmt.Fprintf(stderr, "authgateway sessions list: %v\n", err)
			return exitFailure
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SESSION\tSUBJECT\tLOGIN\tLAST REFRESH\tENDS\tSTATE")
		for _, in := range infos {
			state := "active"
			if in.Revoked {
				state = "revoked"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Family, printable(in.Subject), fmtTime(in.Born, "-"), fmtTime(in.Refreshed, "-"), fmtTime(in.Ends, "-"), state)
		}
		_ = w.Flush()
		return exitOK
	}
	auditLog, err := audit.Open(cfg.Audit.Output)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway sessions: %v\n", err)
		return exitFailure
	}
	defer auditLog.Close()
	n, err := m.RevokeSubject(ctx, *subject)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway sessions revoke: %v (%d sessions ended before the failure)\n", err, n)
		return exitFailure
	}
	auditLog.Write(audit.Event{Event: audit.SessionsRevoked, Subject: *subject, Detail: fmt.Sprintf("%d sessions", n)})
	fmt.Fprintf(stdout, "revoked %d session(s) of %s\n", n, *subject)
	return exitOK
}

// printable returns s as it is when every rune of it prints, else quoted: a
// subject comes from the identity provider and must not reach the
// operator's terminal as escape sequences or break the table's columns.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
