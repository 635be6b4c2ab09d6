package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// WriteError answers with the gateway's JSON error format. msg must never hold
// internal detail or anything the client sent.
func WriteError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	_, _ = w.Write(append(b, '\n'))
}

// setRetryAfter writes Retry-After in whole seconds, at least 1.
func setRetryAfter(h http.Header, secs int) {
	if secs < 1 {
		secs = 1
	}
	h.Set("Retry-After", strconv.Itoa(secs))
}
