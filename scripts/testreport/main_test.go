package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// events is a small `go test -json` stream: a pass, a skip with its reason,
// a failure with its output, and a package that failed to build.
const events = `{"Time":"2026-12-04T06:00:00Z","Action":"start","Package":"github.com/authgateway/authgateway/internal/a"}
{"Time":"2026-12-04T06:00:01Z","Action":"run","Package":"github.com/authgateway/authgateway/internal/a","Test":"TestOK"}
{"Time":"2026-12-04T06:00:01Z","Action":"pass","Package":"github.com/authgateway/authgateway/internal/a","Test":"TestOK","Elapsed":0.5}
{"Time":"2026-12-04T06:00:01Z","Action":"output","Package":"github.com/authgateway/authgateway/internal/a","Test":"TestRedis","Output":"    redistest.go:42: redis-server not installed; set AUTHGATEWAY_REQUIRE_REDIS=1 to make this a failure\n"}
{"Time":"2026-12-04T06:00:01Z","Action":"output","Package":"github.com/authgateway/authgateway/internal/a","Test":"TestRedis","Output":"--- SKIP: TestRedis (0.00s)\n"}
{"Time":"2026-12-04T06:00:01Z","Action":"skip","Package":"github.com/authgateway/authgateway/internal/a","Test":"TestRedis","Elapsed":0}
{"Time":"2026-12-04T06:00:02Z","Action":"output","Package":"github.com/authgateway/authgateway/internal/a","Test":"TestBad","Output":"    a_test.go:9: got 1, want 2\n"}
{"Time":"2026-12-04T06:00:02Z","Action":"fail","Package":"github.com/authgateway/authgateway/internal/a","Test":"TestBad","Elapsed":1.5}
{"Time":"2026-12-04T06:00:02Z","Action":"fail","Package":"github.com/authgateway/authgateway/internal/a","Elapsed":2}
{"Time":"2026-12-04T06:00:03Z","Action":"output","Package":"github.com/authgateway/authgateway/internal/b","Output":"FAIL\tgithub.com/authgateway/authgateway/internal/b [build failed]\n"}
{"Time":"2026-12-04T06:00:03Z","Action":"fail","Package":"github.com/authgateway/authgateway/internal/b","Elapsed":0}
`

func TestStream(t *testing.T) {
	var out bytes.Buffer
	r := newRun(&out, true)
	if err := r.read(strings.NewReader(events+"not json: vet output\n"), nil); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"--- FAIL: internal/a TestBad (1.50s)\n    a_test.go:9: got 1, want 2\n",
		"FAIL internal/a",
		"FAIL\tgithub.com/authgateway/authgateway/internal/b [build failed]\n",
		"FAIL internal/b",
		"not json: vet output\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stream output lacks %q:\n%s", want, got)
		}
	}
}

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	r := newRun(&out, false)
	if err := r.read(strings.NewReader(events), nil); err != nil {
		t.Fatal(err)
	}
	err := r.summary(regexp.MustCompile(`(?i)redis`))
	got := out.String()
	for _, want := range []string{
		"internal/a TestRedis: redis-server not installed; set AUTHGATEWAY_REQUIRE_REDIS=1 to make this a failure  <- a required part skipped\n",
		"tests: 1 passed, 2 failed, 1 skipped\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if err == nil {
		t.Error("summary of a failed run returned no error")
	}

	// Only a required part's skip fails an otherwise green run.
	green := strings.Join(strings.Split(events, "\n")[:6], "\n") + "\n"
	for _, tt := range []struct {
		pattern string
		fail    bool
	}{{`(?i)redis`, true}, {`(?i)nginx`, false}, {"", false}} {
		r := newRun(&bytes.Buffer{}, false)
		_ = r.read(strings.NewReader(green), nil)
		var re *regexp.Regexp
		if tt.pattern != "" {
			re = regexp.MustCompile(tt.pattern)
		}
		if err := r.summary(re); (err != nil) != tt.fail {
			t.Errorf("pattern %q: summary error %v, want failure %v", tt.pattern, err, tt.fail)
		}
	}
}
