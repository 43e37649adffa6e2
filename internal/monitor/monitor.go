// Package monitor keeps the Go runtime's monitor thread (sysmon) of a
// long-running modrun process — runner serve, runner bench and their
// workers — out of its deep sleep.
//
// The monitor sleeps on a futex whenever every processor of the runtime
// is idle, and whoever next makes one busy must wake it; woken so, it
// starts over at its shortest period (20 µs, backing off after 1 ms). A
// server under load goes idle between most batches of requests, and a
// worker between most batches of calls (it waits for its parent, or for a
// query's answer), so each batch paid a futex wake, a futex wait and a
// run of short sleeps. The runtime skips that deep sleep only while its
// scheduler trace is on; Setting turns the trace on with a period of
// 2³¹−1 ms (24.8 days), which keeps it silent on a host up for less than
// that. The monitor then backs off to one look every 10 ms while there is
// nothing for it to do, as it does in a busy process.
//
// Measured with bench/syscalls.sh (issue 33, bench/README.md): isolated,
// 12.5–13.1 → 10.4–10.6 system calls and 3.3–3.7 → 1.5–1.6 context
// switches per served request; in-process 8.6–8.7 → 8.2 and 1.6–1.8 →
// 1.2. The cost: an idle process's monitor wakes 100 times a second
// instead of sleeping (an idle worker's threads wake about 130 times a
// second in all; TestIdleWorkerSleeps in package worker).
//
// The runtime reads the setting once, before main: a process that wants
// it for itself execs itself again (Reexec); its workers get it in their
// environment (Env). On a host up for more than 24.8 days the trace
// prints one line at start and then every 24.8 days: Filter drops them
// from a worker's standard error; a process cannot filter its own, and
// Reexec's caller documents the line. An environment whose GODEBUG sets
// schedtrace (schedtrace=0, say) is left as it is: that is the opt-out.
package monitor

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// Setting is the GODEBUG setting that keeps the monitor awake.
const Setting = "schedtrace=2147483647"

// Env returns env with Setting added to its GODEBUG, unless that GODEBUG
// sets schedtrace already; and whether the result has Setting, so that
// the process's trace lines are to be filtered (Filter). The GODEBUG read
// is the first in env, as a process reads it; the result has one GODEBUG,
// last (exec.Cmd keeps the last of several, execve passes them all on).
func Env(env []string) ([]string, bool) {
	godebug, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok && !found {
			godebug, found = v, true
		}
	}
	if set, ok := schedtrace(godebug); ok {
		return env, set == Setting
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			out = append(out, kv)
		}
	}
	if godebug != "" {
		godebug += ","
	}
	return append(out, "GODEBUG="+godebug+Setting), true
}

// schedtrace returns the last schedtrace setting in godebug (as the
// runtime reads it: the last one wins), and whether there is one.
func schedtrace(godebug string) (string, bool) {
	found, ok := "", false
	for _, s := range strings.Split(godebug, ",") {
		if s = strings.TrimSpace(s); strings.HasPrefix(s, "schedtrace=") {
			found, ok = s, true
		}
	}
	return found, ok
}

// traceLine is how a line of the scheduler trace begins.
const traceLine = "SCHED "

// Filter passes a process's standard error (a Go panic, a fatal error's
// stacks) on to W, less the scheduler's trace lines. It holds back only
// the first bytes of a line while they may still begin a trace line (at
// most six); everything else goes on at once. Its zero value with W set
// is ready to use; it is safe for concurrent use.
type Filter struct {
	W io.Writer

	mu   sync.Mutex
	mid  bool   // inside a line that is passed on
	drop bool   // inside a trace line
	held []byte // a line's first bytes, so far those of traceLine
}

func (f *Filter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		switch {
		case f.drop:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return n, nil
			}
			p, f.drop = p[i+1:], false
		case f.mid:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				_, err := f.W.Write(p)
				return n, err
			}
			if _, err := f.W.Write(p[:i+1]); err != nil {
				return n, err
			}
			p, f.mid = p[i+1:], false
		case p[0] == traceLine[len(f.held)]:
			f.held, p = append(f.held, p[0]), p[1:]
			if len(f.held) == len(traceLine) {
				f.held, f.drop = f.held[:0], true
			}
		default:
			// Not a trace line: what was held, and the rest of the
			// line, go on.
			if len(f.held) > 0 {
				if _, err := f.W.Write(f.held); err != nil {
					return n, err
				}
				f.held = f.held[:0]
			}
			f.mid = true
		}
	}
	return n, nil
}
