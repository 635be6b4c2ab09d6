package login

import (
	"net/url"
	"strings"
)

// maxRedirectLen bounds rd; it travels in the state cookie.
const maxRedirectLen = 1024

// Redirects decides where the browser may go after login or logout.
type Redirects struct {
	// Self is the gateway's own origin (scheme://host[:port]); absolute URLs
	// to it are allowed.
	Self *url.URL
	// Hosts are other hosts (host or host:port, case-insensitive) that
	// absolute URLs may point at.
	Hosts []string
}

// Safe returns rd when it is a path on this gateway or an absolute http(s)
// URL to an allowed host, and "/" otherwise. Anything that some browser
// could read as another origin is refused, in every spelling: "//evil",
// "/\evil", "\\evil", "https:evil", "/ /evil", control characters,
// javascript:, and the percent-encoded forms of all of them (rd is checked
// after every round of decoding). Paths under /auth/ become "/": sending the
// browser back into the login flow would loop.
func (r Redirects) Safe(rd string) string {
	if rd == "" || len(rd) > maxRedirectLen {
		return "/"
	}
	// Check every decoding of rd: some component between here and the
	// browser (or the upstream) may decode once more.
	for s, i := rd, 0; ; i++ {
		if !r.plainOK(s, i == 0) {
			return "/"
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return "/" // a broken escape is not a place to go
		}
		if d == s {
			break
		}
		if i == 4 {
			return "/" // encoded five times over: nobody means that
		}
		s = d
	}
	return quoteHTMLSpecial(rd)
}

// plainOK checks one spelling of rd. Control characters, DEL and
// backslash are refused in every spelling (browsers strip or reinterpret
// them: "/\evil" and "/\t/evil" are "//evil" to most), a space as typed or
// at the start of a decoded form (leading spaces are trimmed); "%20" inside
// a path or query is ordinary.
func (r Redirects) plainOK(s string, raw bool) bool {
	if strings.HasPrefix(s, " ") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f || c == '\\' || (raw && c == ' ') {
			return false
		}
	}
	if strings.HasPrefix(s, "/") {
		if strings.HasPrefix(s, "//") {
			return false
		}
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			return false
		}
		return u.Path != "/auth" && !strings.HasPrefix(u.Path, "/auth/")
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return false
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && r.Self != nil && r.Self.Scheme == "http") {
		return false
	}
	return r.hostAllowed(u)
}

func (r Redirects) hostAllowed(u *url.URL) bool {
	host := strings.ToLower(u.Host)
	if r.Self != nil && host == strings.ToLower(r.Self.Host) {
		return u.Path != "/auth" && !strings.HasPrefix(u.Path, "/auth/")
	}
	for _, h := range r.Hosts {
		if host == strings.ToLower(h) {
			return true
		}
	}
	return false
}

// quoteHTMLSpecial percent-encodes the few characters a valid URL may hold
// that mean something in HTML, so that rd reads the same in a Location
// header, an attribute and a meta refresh.
func quoteHTMLSpecial(s string) string {
	if !strings.ContainsAny(s, "\"'<>`") {
		return s
	}
	return strings.NewReplacer(`"`, "%22", "'", "%27", "<", "%3C", ">", "%3E", "`", "%60").Replace(s)
}
