package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/authgateway/authgateway/internal/strategies/basic"
)

// defaultHtpasswdCost is the bcrypt cost of `authgateway htpasswd`
// (about a quarter of a second per check on a current core; the gateway
// caches verified credentials, so only the first request of a client pays).
const defaultHtpasswdCost = 12

// cmdHtpasswd prints an htpasswd line for a basic strategy: the password
// is read from stdin (without echo, and twice, on a terminal).
func cmdHtpasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("authgateway htpasswd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user name (required)")
	cost := fs.Int("cost", defaultHtpasswdCost, fmt.Sprintf("bcrypt cost, %d to %d", bcrypt.MinCost, basic.MaxCost))
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	switch {
	case len(pos) > 0:
		fmt.Fprintf(stderr, "authgateway htpasswd: unexpected argument %q (the password is read from stdin)\n", pos[0])
		return exitUsage
	case *user == "":
		fmt.Fprintln(stderr, "authgateway htpasswd: -user is required")
		return exitUsage
	case strings.Contains(*user, ":") || strings.TrimSpace(*user) != *user || strings.ContainsFunc(*user, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		fmt.Fprintln(stderr, "authgateway htpasswd: -user must not hold a colon, control characters or space around it")
		return exitUsage
	case *cost < bcrypt.MinCost || *cost > basic.MaxCost:
		// The basic strategy refuses a line above basic.MaxCost.
		fmt.Fprintf(stderr, "authgateway htpasswd: -cost %d: want %d to %d\n", *cost, bcrypt.MinCost, basic.MaxCost)
		return exitUsage
	}
	pass, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway htpasswd: %v\n", err)
		return exitFailure
	}
	hash, err := bcrypt.GenerateFromPassword(pass, *cost)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway htpasswd: %v\n", err)
		return exitFailure
	}
	// Go writes $2a$; $2y$ is the same algorithm under the prefix Apache's
	// htpasswd writes.
	fmt.Fprintf(stdout, "%s:$2y$%s\n", *user, bytes.TrimPrefix(hash, []byte("$2a$")))
	return exitOK
}

// readPassword reads the password: from a terminal without echo, asked
// twice; else the first line of stdin.
func readPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	var pass []byte
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("reading the password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("reading the password: %w", err)
		}
		if !bytes.Equal(p, again) {
			return nil, errors.New("the passwords differ")
		}
		pass = p
	} else {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading the password: %w", err)
		}
		pass = bytes.TrimRight(line, "\r\n")
	}
	switch {
	case len(pass) == 0:
		return nil, errors.New("empty password on stdin")
	case len(pass) > 72:
		return nil, errors.New("the password is longer than 72 bytes: bcrypt would ignore the rest")
	}
	return pass, nil
}
