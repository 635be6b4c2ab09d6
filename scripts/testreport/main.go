// Command testreport reads the events of `go test -json` and says what a
// person running the tests wants to know: which package finished and how
// long it took, the output of what failed, which tests were skipped and why,
// and which were slow. scripts/test.sh uses it where gotestsum is not
// installed, and after every run for the skip check and the closing line.
//
//	go test -json ./... | testreport stream -json events.json
//	testreport summary [-fail-skips REGEXP] events.json
//
// stream prints one line per package as it finishes and the output of
// failed tests; it exits 1 if anything failed. summary prints the
// skipped tests with their reasons, the slowest tests and packages, and a
// closing "tests: N passed, N failed, N skipped" line; with -fail-skips it
// exits 1 if a skipped test's name or reason matches the expression (a part
// CI requires, such as Redis, that must not skip).
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// run collects the outcome of a test run from its events.
type run struct {
	out      io.Writer
	live     bool                // print package lines and failures as they come
	output   map[string][]string // test key -> its output lines
	skipped  []result
	failed   []result
	passed   int
	tests    []result // every finished top-level test, for the slowest list
	packages []result
	start    time.Time
}

type result struct {
	pkg, test string
	elapsed   float64
	reason    string
}

func newRun(out io.Writer, live bool) *run {
	return &run{out: out, live: live, output: map[string][]string{}}
}

func key(e event) string { return e.Package + " " + e.Test }

// short is a package path without the module's: internal/config.
func short(pkg string) string {
	return strings.TrimPrefix(pkg, "github.com/authgateway/authgateway/")
}

func (r *run) add(e event) {
	if r.start.IsZero() && !e.Time.IsZero() {
		r.start = e.Time
	}
	switch e.Action {
	case "output", "build-output":
		if len(r.output[key(e)]) < 200 {
			r.output[key(e)] = append(r.output[key(e)], e.Output)
		}
	case "pass", "fail", "skip":
		res := result{pkg: e.Package, test: e.Test, elapsed: e.Elapsed}
		if e.Test == "" {
			r.finishPackage(e, res)
			return
		}
		switch e.Action {
		case "pass":
			r.passed++
		case "fail":
			r.failed = append(r.failed, res)
			if r.live {
				fmt.Fprintf(r.out, "--- FAIL: %s %s (%.2fs)\n%s", short(e.Package), e.Test, e.Elapsed, strings.Join(r.output[key(e)], ""))
			}
		case "skip":
			res.reason = skipReason(r.output[key(e)])
			r.skipped = append(r.skipped, res)
		}
		if !strings.Contains(e.Test, "/") {
			r.tests = append(r.tests, res)
		}
		delete(r.output, key(e))
	}
}

func (r *run) finishPackage(e event, res result) {
	status := map[string]string{"pass": "ok  ", "fail": "FAIL", "skip": "----"}[e.Action]
	if e.Action == "skip" { // no test files
		return
	}
	r.packages = append(r.packages, res)
	if e.Action == "fail" && !slices.ContainsFunc(r.failed, func(f result) bool { return f.pkg == e.Package }) {
		// A package that failed outside any test (build error, panic in
		// TestMain, timeout): its output says why.
		r.failed = append(r.failed, res)
		if r.live {
			fmt.Fprint(r.out, strings.Join(r.output[key(e)], ""))
		}
	}
	if r.live {
		at := ""
		if !r.start.IsZero() {
			at = fmt.Sprintf("  [%s]", e.Time.Sub(r.start).Round(time.Second))
		}
		fmt.Fprintf(r.out, "%s %-40s %6.1fs%s\n", status, short(e.Package), e.Elapsed, at)
	}
}

// skipReason is the message a skipped test gave: its last output line
// that is not the "--- SKIP" line itself.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		// "file_test.go:42: message"
		if _, msg, ok := strings.Cut(l, ": "); ok && strings.Contains(l[:strings.Index(l, ": ")], ".go:") {
			return msg
		}
		return l
	}
	return "(no reason given)"
}

func (r *run) summary(failSkips *regexp.Regexp) error {
	var bad []result
	if len(r.skipped) > 0 {
		fmt.Fprintf(r.out, "\nSkipped tests (%d):\n", len(r.skipped))
		for _, s := range r.skipped {
			mark := ""
			if failSkips != nil && (failSkips.MatchString(s.reason) || failSkips.MatchString(s.test)) {
				mark = "  <- a required part skipped"
				bad = append(bad, s)
			}
			fmt.Fprintf(r.out, "  %s %s: %s%s\n", short(s.pkg), s.test, s.reason, mark)
		}
	}
	slowest := func(title string, rs []result, n int) {
		rs = slices.Clone(rs)
		slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(b.elapsed, a.elapsed) })
		fmt.Fprintf(r.out, "\n%s:\n", title)
		for _, x := range rs[:min(n, len(rs))] {
			fmt.Fprintf(r.out, "  %6.1fs  %s\n", x.elapsed, strings.TrimSpace(short(x.pkg)+" "+x.test))
		}
	}
	if len(r.packages) > 0 {
		slowest("Slowest packages (they run two at a time)", r.packages, 5)
		slowest("Slowest tests", r.tests, 8)
	}
	if len(r.failed) > 0 {
		fmt.Fprintf(r.out, "\nFailed:\n")
		for _, f := range r.failed {
			fmt.Fprintf(r.out, "  %s %s\n", short(f.pkg), f.test)
		}
	}
	fmt.Fprintf(r.out, "\ntests: %d passed, %d failed, %d skipped\n", r.passed, len(r.failed), len(r.skipped))
	switch {
	case len(r.failed) > 0:
		return errors.New("tests failed")
	case len(bad) > 0:
		return fmt.Errorf("%d skipped test(s) belong to parts this run requires (%s)", len(bad), failSkips)
	}
	return nil
}

// read feeds every event of in to r; with tee, every line is copied there.
func (r *run) read(in io.Reader, tee io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if tee != nil {
			_, _ = tee.Write(append(line, '\n'))
		}
		var e event
		if json.Unmarshal(line, &e) != nil || e.Action == "" {
			// Not an event (go vet output, a build error before any
			// event): show it as it is.
			if r.live {
				fmt.Fprintln(r.out, string(line))
			}
			continue
		}
		r.add(e)
	}
	return sc.Err()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testreport stream [-json FILE] | summary [-fail-skips REGEXP] FILE")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("testreport "+os.Args[1], flag.ExitOnError)
	jsonOut := fs.String("json", "", "stream: also write the events to this file")
	failSkips := fs.String("fail-skips", "", "summary: exit 1 if a skipped test's name or reason matches this expression")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "stream":
		err = stream(*jsonOut)
	case "summary":
		err = summarize(fs.Args(), *failSkips)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
}

func stream(jsonOut string) error {
	r := newRun(os.Stdout, true)
	var tee io.Writer
	if jsonOut != "" {
		f, err := os.Create(jsonOut)
		if err != nil {
			return err
		}
		defer f.Close()
		tee = f
	}
	if err := r.read(os.Stdin, tee); err != nil {
		return err
	}
	if len(r.failed) > 0 {
		return errors.New("tests failed")
	}
	return nil
}

func summarize(files []string, failSkips string) error {
	if len(files) != 1 {
		return errors.New("summary takes one events file")
	}
	var re *regexp.Regexp
	if failSkips != "" {
		var err error
		if re, err = regexp.Compile(failSkips); err != nil {
			return err
		}
	}
	f, err := os.Open(files[0])
	if err != nil {
		return err
	}
	defer f.Close()
	r := newRun(os.Stdout, false)
	if err := r.read(f, nil); err != nil {
		return err
	}
	return r.summary(re)
}
