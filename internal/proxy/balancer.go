package proxy

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/authgateway/authgateway/internal/upstream"
)

// Balancer spreads a route's requests over its upstream targets
// (upstream.Pool).
type Balancer interface {
	// Pick returns the next target that takes requests, nil when none does.
	Pick() *upstream.Target
	// Peek returns what Pick would, without advancing (explain).
	Peek() *upstream.Target
	// RoundTrip sends req, pointed at t, and may retry it once on another
	// target; it returns the target that answered or failed last.
	RoundTrip(req *http.Request, t *upstream.Target) (*http.Response, *upstream.Target, error)
	// Health lists the targets' states.
	Health() []upstream.Health
}

var _ Balancer = (*upstream.Pool)(nil)

// routeTransport sends each forwarded request with its route's transport:
// through the route's Balancer, its own Transport, or the shared one.
type routeTransport struct{ shared http.RoundTripper }

func (rt routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, ok := req.Context().Value(stateKey{}).(*reqState)
	if !ok {
		return rt.shared.RoundTrip(req)
	}
	switch r := st.route; {
	case st.target != nil:
		resp, t, err := r.Upstreams.RoundTrip(req, st.target)
		st.target = t
		return resp, err
	case r.Transport != nil:
		return r.Transport.RoundTrip(req)
	}
	return rt.shared.RoundTrip(req)
}

// isGRPC reports whether r is a gRPC call: its client reads the status of
// a failed call from grpc-status, and cannot read a JSON body.
func isGRPC(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// grpcCode maps the gateway's own HTTP answers to gRPC status codes.
func grpcCode(status int) int {
	switch status {
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusTooManyRequests, http.StatusRequestEntityTooLarge:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return 12 // UNIMPLEMENTED
	case http.StatusBadRequest:
		return 3 // INVALID_ARGUMENT
	case http.StatusGatewayTimeout:
		return 4 // DEADLINE_EXCEEDED
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}

// writeError answers r with the gateway's error: JSON, or to a gRPC call a
// gRPC status (HTTP 200, trailers-only: grpc-status and grpc-message in
// the headers, no body). msg is the same fixed message either way.
func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if !isGRPC(r) {
		WriteError(w, status, msg)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Cache-Control", "no-store")
	h.Set("Grpc-Status", strconv.Itoa(grpcCode(status)))
	h.Set("Grpc-Message", grpcMessage(msg))
	w.WriteHeader(http.StatusOK)
}

// grpcMessage percent-encodes msg as grpc-message requires: bytes outside
// printable ASCII, and '%'.
func grpcMessage(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteString("%" + strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&15, 16))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
