package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cmdClosedLoop is wrk's closed loop for the scenarios wrk cannot drive: a
// login session's cookies change when the gateway refreshes it, and wrk's
// Lua cannot tell which connection's response set them. conns workers send
// back to back for -duration; it prints one BENCHJSON line as rotate.lua does.
func cmdClosedLoop(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("closedloop", flag.ContinueOnError)
	spec := fs.String("target", "", "NAME,URL[,HEADER,CREDSFILE,OFFSET[,MODE]] as for fixedrate")
	conns := fs.Int("conns", 64, "connections (and workers)")
	dur := fs.Duration("duration", 5*time.Second, "run time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *spec == "" || *conns <= 0 || *dur <= 0 {
		return errors.New("need -target, -conns > 0 and -duration > 0")
	}
	t, err := parseTarget(*spec, *conns)
	if err != nil {
		return err
	}
	r := closedLoop(ctx, t.g, *conns, *dur)
	if err := t.g.save(); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "BENCHJSON %s\n", b)
	return err
}

// closedLoop runs conns workers sending g's requests back to back for d.
func closedLoop(ctx context.Context, g *generator, conns int, d time.Duration) *loadResult {
	type worker struct {
		lat               []float64
		status, transport int64
	}
	ws := make([]*worker, conns)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for c := range ws {
		w := &worker{}
		ws[c] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				i := -1
				if len(g.values) > 0 {
					i = g.pick()
				}
				t0 := time.Now()
				status, _, err := g.send(ctx, i)
				w.lat = append(w.lat, float64(time.Since(t0).Microseconds()))
				switch {
				case err != nil:
					w.transport++
				case status/100 != 2 && status/100 != 3:
					w.status++
				}
			}
		}()
	}
	wg.Wait()
	r := &loadResult{DurationUS: time.Since(start).Microseconds()}
	var lat []float64
	for _, w := range ws {
		lat = append(lat, w.lat...)
		r.ErrStatus += w.status
		r.ErrRead += w.transport
	}
	slices.Sort(lat)
	r.Requests = int64(len(lat))
	r.P50US, r.P90US, r.P99US = int64(percentile(lat, 50)), int64(percentile(lat, 90)), int64(percentile(lat, 99))
	r.MaxUS = int64(percentile(lat, 100))
	return r
}

// runClosedLoop runs `benchtool closedloop` for t, pinned like wrk.
func (e *env) runClosedLoop(ctx context.Context, t *target, d time.Duration) (*loadResult, error) {
	argv := []string{e.self, "closedloop", "-target", t.targetSpec(t.sc.name, t.sc.path),
		"-conns", strconv.Itoa(e.opts.conns), "-duration", d.String()}
	if e.opts.loadCPU != "" {
		argv = append([]string{"taskset", "-c", e.opts.loadCPU}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("closedloop: %w", err)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "BENCHJSON ")
	if !ok {
		return nil, fmt.Errorf("closedloop printed no result: %s", oneLine(string(out)))
	}
	var r loadResult
	if err := json.Unmarshal([]byte(rest), &r); err != nil {
		return nil, fmt.Errorf("parsing closedloop output: %w", err)
	}
	return &r, nil
}
