package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerationOutlivesItsLastRequest: a streamed response that began
// before a reload is served to its end by the generation it started on,
// which closes when that request ends, not before and not by a timer; it
// can never be acquired again, and new requests are served by the new
// generation.
func TestGenerationOutlivesItsLastRequest(t *testing.T) {
	arrived, finish := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream/x" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			close(arrived)
			<-finish
			_, _ = io.WriteString(w, "data: last\n\n")
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	routes := `server: {listen: "127.0.0.1:0", admin_listen: ""}
routes:
  - {name: stream, path: /stream, upstream: "` + up.URL + `", public: true}
`
	app := appFromFile(t, path, routes)

	first := app.gen.Load()
	w := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		defer close(served)
		app.ServeHTTP(w, httptest.NewRequest("GET", "/stream/x", nil))
	}()
	<-arrived

	withNew := routes + `  - {name: other, path: /other, upstream: "` + up.URL + `", public: true}` + "\n"
	if err := os.WriteFile(path, []byte(withNew), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if app.gen.Load() == first {
		t.Fatal("the reload did not replace the generation")
	}
	if n := first.refs.Load(); n != 1 {
		t.Fatalf("the replaced generation holds %d references during the stream, want 1 (the stream's)", n)
	}
	nw := httptest.NewRecorder()
	app.ServeHTTP(nw, httptest.NewRequest("GET", "/other/x", nil))
	if nw.Code != http.StatusOK {
		t.Fatalf("new route after the reload: %d", nw.Code)
	}

	close(finish)
	<-served
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "data: last") {
		t.Errorf("the stream was cut: %d %q", w.Code, w.Body.String())
	}
	if n := first.refs.Load(); n != 0 {
		t.Errorf("the replaced generation holds %d references after its last request, want 0 (closed)", n)
	}
	if first.tryAcquire() {
		t.Error("a closed generation was acquired")
	}
}
