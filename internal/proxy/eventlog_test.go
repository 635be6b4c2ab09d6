package proxy

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

func TestEventEncoderIsJSON(t *testing.T) {
	var buf bytes.Buffer
	e := newEventEncoder(&buf)
	ev := &Event{
		RequestID: "r1", Route: "api", Method: "GET", Path: "/a\"b\\c", ClientIP: netip.MustParseAddr("2001:db8::1"),
		Strategy: "jwt", Outcome: OutcomeAllowed, Subject: "bob\n\x00\xff<script>\u2028", TokenID: "t", Status: 200,
		Start: time.Now().Add(-time.Millisecond),
	}
	e.write(ev, time.Now())
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.Bytes())
	}
	want := map[string]any{"msg": "auth", "level": "INFO", "route": "api", "path": "/a\"b\\c", "client_ip": "2001:db8::1",
		"subject": "bob\n\x00\ufffd<script>\u2028", "status": float64(200), "outcome": "allowed", "request_id": "r1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("want exactly one line: %q", buf.Bytes())
	}
}

func BenchmarkEventEncoder(b *testing.B) {
	e := newEventEncoder(discard{})
	ev := &Event{RequestID: "abc-1", Route: "api", Method: "GET", Path: "/api/x", ClientIP: netip.MustParseAddr("127.0.0.1"),
		Strategy: "jwt", Outcome: OutcomeAllowed, Subject: "alice", TokenID: "tok", Status: 200, Start: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		e.write(ev, time.Now())
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
