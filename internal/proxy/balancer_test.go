package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWriteErrorGRPC: a gRPC call gets its status in grpc-status, never a
// JSON body it cannot read; other requests keep the JSON error.
func TestWriteErrorGRPC(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{
		{401, "16"}, {403, "7"}, {429, "8"}, {503, "14"}, {502, "14"}, {504, "4"}, {404, "12"}, {400, "3"}, {500, "2"},
	} {
		r := httptest.NewRequest("POST", "/svc/M", nil)
		r.Header.Set("Content-Type", "application/grpc+proto")
		w := httptest.NewRecorder()
		writeError(w, r, tc.status, "100% unauthorized\n")
		if w.Code != 200 || w.Header().Get("Grpc-Status") != tc.code || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "application/grpc" {
			t.Errorf("%d: got %d grpc-status %q body %q, want 200 %s and no body", tc.status, w.Code, w.Header().Get("Grpc-Status"), w.Body, tc.code)
		}
		if got := w.Header().Get("Grpc-Message"); got != "100%25 unauthorized%0a" {
			t.Errorf("grpc-message %q", got)
		}
	}
	r := httptest.NewRequest("GET", "/x", nil)
	w := httptest.NewRecorder()
	writeError(w, r, http.StatusUnauthorized, "unauthorized")
	if w.Code != 401 || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != `{"error":"unauthorized"}`+"\n" {
		t.Errorf("plain request: %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
}
