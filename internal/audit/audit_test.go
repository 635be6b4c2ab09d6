package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestWriteJSONLines(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { l.Write(Event{Event: AuthFailure, Route: "r", Reason: "expired", Status: 401 + i%2}) })
	}
	wg.Wait()
	sc := bufio.NewScanner(&buf)
	n := 0
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %q", n, sc.Text())
		}
		if ev.Event != AuthFailure || ev.Time.IsZero() {
			t.Errorf("event = %+v", ev)
		}
		n++
	}
	if n != 50 {
		t.Fatalf("got %d lines, want 50", n)
	}
}

func TestNilAndFile(t *testing.T) {
	var l *Log
	l.Write(Event{Event: Login}) // must not panic
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(""); l != nil || err != nil {
		t.Fatalf("Open(\"\") = %v, %v; want disabled", l, err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(Event{Event: KeyCreated, KeyID: "key_1"})
	_ = f.Close()
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte(`"key_id":"key_1"`)) {
		t.Errorf("file = %s", b)
	}
}
