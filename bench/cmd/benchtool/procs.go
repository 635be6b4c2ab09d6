package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs tracks every long-running process the harness started, so all of
// them are stopped by PID on every exit path.
type procs struct {
	mu   sync.Mutex
	list []*proc
	// cpu is the CPU list the servers are pinned to ("" = no pinning).
	cpu string
}

type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid after done is closed
}

// start runs argv pinned to p.cpu with stdout discarded (the gateway's log
// goes there: a real write per event, no disk noise) and stderr in a file.
func (p *procs) start(name, dir string, argv ...string) (*proc, error) {
	if p.cpu != "" {
		argv = append([]string{"taskset", "-c", p.cpu}, argv...)
	}
	logPath := filepath.Join(dir, name+".stderr.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = nil // /dev/null
	cmd.Stderr = logf
	// If the harness itself is killed, the kernel kills its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	pr := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { pr.err = cmd.Wait(); close(pr.done) }()
	p.mu.Lock()
	p.list = append(p.list, pr)
	p.mu.Unlock()
	return pr, nil
}

// pid is the process's PID: taskset execs its target, so it is the server's.
func (pr *proc) pid() int { return pr.cmd.Process.Pid }

func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// stderrTail returns the last lines the process wrote to stderr, for errors.
func (pr *proc) stderrTail() string {
	b, _ := os.ReadFile(pr.logPath)
	b = bytes.TrimSpace(b)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}

// stop sends SIGTERM, then SIGKILL after a grace period.
func (pr *proc) stop(grace time.Duration) {
	if pr.exited() {
		return
	}
	_ = pr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pr.done:
	case <-time.After(grace):
		_ = pr.cmd.Process.Kill()
		<-pr.done
	}
}

// stopAll stops every process, newest first.
func (p *procs) stopAll() {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop(5 * time.Second)
	}
}

// remove stops one process and forgets it.
func (p *procs) remove(pr *proc) {
	pr.stop(5 * time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, q := range p.list {
		if q == pr {
			p.list = append(p.list[:i], p.list[i+1:]...)
			break
		}
	}
}

// clkTck is USER_HZ, 100 on every Linux architecture Go supports.
const clkTck = 100

// cpuTime is the user+system CPU time of pid and of its child processes
// (nginx's workers), read from /proc.
func cpuTime(pid int) (time.Duration, error) {
	total, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	for _, c := range children(pid) {
		if t, err := procCPU(c); err == nil {
			total += t
		}
	}
	return total, nil
}

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after ')' are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clkTck, nil
}

func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// memKB reads a field such as VmHWM (peak RSS) or VmRSS from /proc/PID/status,
// summed over pid and its children.
func memKB(pid int, field string) int64 {
	var total int64
	for _, p := range append([]int{pid}, children(pid)...) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, field+":"); ok {
				v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += v
			}
		}
	}
	return total
}
