package basic

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// maxFileSize bounds how much of an htpasswd file is read: a bcrypt line
// is under 100 bytes, so 16 MiB is far beyond any real file.
const maxFileSize = 16 << 20

// MaxCost is the highest bcrypt cost accepted, Apache htpasswd's own bound
// (-C 4 to 17), so no file it writes is refused. Each step doubles the work:
// at cost 17 one check takes seconds, at 31 (bcrypt's maximum) about a day,
// and the file's highest cost is also what the dummy hash of unknown users
// is made at (at start, and after each edit). One such line would hang
// start-up and let anyone who names its user hold a bcrypt slot for hours.
const MaxCost = 17

// users is one parsed version of an htpasswd file: each user's bcrypt
// hash. Never modified once built.
type users struct {
	hashes map[string]string
	// maxCost is the highest bcrypt cost of the file: the cost of the dummy
	// hash unknown users are checked against (10 for an empty file).
	maxCost int
}

// parseHtpasswd reads an Apache htpasswd file: "user:hash" lines, blank
// lines and "#" comments skipped. Only bcrypt hashes ($2y$, $2b$, $2a$)
// are accepted: the other kinds htpasswd can write (MD5 $apr1$, SHA-1
// {SHA}, crypt, plain text) are fast to brute-force, and a file holding
// one is refused with its file and line rather than half-loaded.
func parseHtpasswd(file string, data []byte) (*users, error) {
	u := &users{hashes: map[string]string{}, maxCost: bcrypt.DefaultCost}
	first := true
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s:%d: not a user:hash line", file, n))
			continue
		case user == "" || strings.TrimSpace(user) != user || strings.ContainsFunc(user, isControl):
			errs = append(errs, fmt.Errorf("%s:%d: empty user name, or one with space around it or control characters", file, n))
			continue
		}
		if kind := hashKind(hash); kind != "" {
			errs = append(errs, fmt.Errorf("%s:%d: user %q: %s hashes are not accepted, only bcrypt ($2y$): make the line again with `authgateway htpasswd -user %s`", file, n, user, kind, user))
			continue
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: user %q: not a valid bcrypt hash", file, n, user))
			continue
		}
		if cost > MaxCost {
			errs = append(errs, fmt.Errorf("%s:%d: user %q: bcrypt cost %d is above %d: every check would take minutes or more; make the line again with `authgateway htpasswd -user %s -cost 12`", file, n, user, cost, MaxCost, user))
			continue
		}
		if _, dup := u.hashes[user]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: user %q appears twice", file, n, user))
			continue
		}
		u.hashes[user] = hash
		if first || cost > u.maxCost {
			u.maxCost, first = cost, false
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	return u, errors.Join(errs...)
}

// hashKind names a hash that is not bcrypt, or "" for one that claims to
// be ($2y$, $2b$, $2a$: the same algorithm; $2x$ marked hashes of a buggy
// implementation and is refused too).
func hashKind(h string) string {
	switch {
	case strings.HasPrefix(h, "$2y$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2a$"):
		return ""
	case strings.HasPrefix(h, "$apr1$"):
		return "MD5 ($apr1$)"
	case strings.HasPrefix(h, "{SHA}"):
		return "SHA-1 ({SHA})"
	case strings.HasPrefix(h, "$1$"), strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		return "crypt (" + h[:3] + ")"
	case strings.HasPrefix(h, "$"):
		return "unknown"
	case len(h) == 13:
		return "DES crypt or plain text"
	}
	return "plain text"
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
