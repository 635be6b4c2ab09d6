package login

import (
	"html"
	"net/http"
	"strings"
)

// setPageHeaders are the headers of every HTML page of the login flow: no
// script, no framing, no caching, and no Referer (the callback URL holds the
// authorization code).
func setPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// writePage answers a small HTML page. Every text is HTML-escaped here, so
// callers may pass what the provider or the client sent.
func writePage(w http.ResponseWriter, status int, title, message string) {
	setPageHeaders(w.Header())
	w.WriteHeader(status)
	var b strings.Builder
	b.WriteString("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</title></head>\n<body><h1>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</h1>\n<p>")
	b.WriteString(html.EscapeString(message))
	b.WriteString("</p>\n<p><a href=\"/\">Back to the start page</a></p></body></html>\n")
	_, _ = w.Write([]byte(b.String()))
}

// writeContinue answers 200 with a page that moves the browser on to target.
//
// Why not a 302: the callback is reached by a redirect from the provider,
// a cross-site navigation. A redirect from it would still be part of that
// cross-site chain, and the browser would withhold the SameSite=Strict
// session cookies from the first request to the target: the user would be
// sent to login again, forever. A navigation started by this page is
// same-site, so the cookies go along. target must come from Redirects.Safe.
func writeContinue(w http.ResponseWriter, target string) {
	setPageHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	t := html.EscapeString(target)
	_, _ = w.Write([]byte("<!doctype html>\n<html><head><meta charset=\"utf-8\">" +
		"<meta http-equiv=\"refresh\" content=\"0;url=" + t + "\"><title>Signed in</title></head>\n" +
		"<body><p>Signed in. <a href=\"" + t + "\">Continue</a></p></body></html>\n"))
}

// writeLogoutConfirm answers a logout link followed from another site: a
// page whose button posts the logout from this origin (the user's own
// choice), instead of acting on a request any site can make.
// The form's POST may be redirected on to the provider's logout, which
// form-action must then allow: providerOrigin, when given.
func writeLogoutConfirm(w http.ResponseWriter, providerOrigin string) {
	setPageHeaders(w.Header())
	if providerOrigin != "" {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'self' "+providerOrigin+"; frame-ancestors 'none'")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Sign out</title></head>\n" +
		"<body><form method=\"post\" action=\"/auth/logout\"><p>Sign out of this site?</p>" +
		"<button type=\"submit\">Sign out</button></form></body></html>\n"))
}
