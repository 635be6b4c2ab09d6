package strategies

import (
	"net/http"
	"slices"
	"strings"
)

// MaxTokenBytes bounds the size of a bearer token we are willing to parse.
const MaxTokenBytes = 8 << 10

// BearerToken answers the token of an "Authorization: Bearer <token>"
// header (the scheme in any case, white space around the token trimmed); ok
// is false without such a header or with an empty token.
func BearerToken(r *http.Request) (token string, ok bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}

// ClaimPath is a claim name split at its dots: "realm_access.roles" is the
// member roles of the object realm_access.
type ClaimPath []string

// NewClaimPath splits name, or def when name is empty; both empty: a path
// that leads nowhere (never the claim named "").
func NewClaimPath(name, def string) ClaimPath {
	if name == "" {
		name = def
	}
	if name == "" {
		return nil
	}
	return strings.Split(name, ".")
}

// Lookup follows the path through claims; nil where it leads nowhere.
func (p ClaimPath) Lookup(claims map[string]any) any {
	if len(p) == 0 {
		return nil
	}
	var cur any = claims
	for _, part := range p {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// ClaimPaths are several claims read as one (roles_claim as a list).
type ClaimPaths []ClaimPath

// NewClaimPaths splits names, or def when there are none.
func NewClaimPaths(names []string, def string) ClaimPaths {
	if len(names) == 0 {
		if p := NewClaimPath("", def); p != nil {
			return ClaimPaths{p}
		}
		return nil
	}
	out := make(ClaimPaths, 0, len(names))
	for _, n := range names {
		if p := NewClaimPath(n, ""); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// Strings answers the union of the paths' values as a string list (each
// read as StringList does), in order, without repeats; nil when none holds
// any.
func (ps ClaimPaths) Strings(claims map[string]any) []string {
	return ps.StringsFrom(func(p ClaimPath) any { return p.Lookup(claims) })
}

// StringsFrom is Strings with each path's value read by read.
func (ps ClaimPaths) StringsFrom(read func(ClaimPath) any) []string {
	if len(ps) == 1 {
		return StringList(read(ps[0]))
	}
	var out []string
	for _, p := range ps {
		for _, s := range StringList(read(p)) {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// StringList reads a claim that is an array of strings, or one string of
// space- or comma-separated values (roles and scopes claims).
func StringList(v any) []string {
	switch x := v.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return slices.Clone(x)
	case string:
		return strings.FieldsFunc(x, func(r rune) bool { return r == ' ' || r == ',' })
	}
	return nil
}

// EmailUnverified reports whether claims hold an email_verified member that
// does not say true (true, or "true" as AWS Cognito sends it): false,
// "false", or anything else. Such an email is no identity: it is not
// forwarded, shown or matched. Without the member the claims say nothing,
// and the email is kept.
func EmailUnverified(claims map[string]any) bool {
	v, ok := claims["email_verified"]
	if !ok {
		return false
	}
	switch x := v.(type) {
	case bool:
		return !x
	case string:
		return !strings.EqualFold(x, "true")
	}
	return true
}
