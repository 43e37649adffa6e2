// Package procs reads Linux's /proc for the processes modrun starts: an
// engine's workers, as tests and bench/ look them up.
package procs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Children returns the PIDs whose parent is pid, from the parent field of
// each /proc/PID/stat.
func Children(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("reading /proc: %w", err)
	}
	var pids []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		if f := strings.Fields(string(rest)); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// RSS returns process pid's resident set in bytes (0 if it is gone).
func RSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// Wakeups returns how many times each thread of process pid has slept and
// been woken (its voluntary context switches, from
// /proc/PID/task/TID/status), by thread ID; empty if pid is gone.
func Wakeups(pid int) map[int]uint64 {
	n := map[int]uint64{}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return n
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
		if err != nil {
			continue // exited meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n[tid], _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			}
		}
	}
	return n
}
