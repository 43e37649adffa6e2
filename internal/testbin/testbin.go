// Package testbin finds the programs that tests start (etcd, Chromium)
// and the processes they start (Children).
// Without one, a test skips naming the Debian package that provides it —
// unless $CI is true, where .ci/run installs them and the test fails.
package testbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Need returns the path of the first of names on the PATH. With none, it
// fails the test when $CI is true and skips it otherwise, naming pkg.
func Need(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed: apt-get install %s (CI must run this test; .ci/run installs it)", names[0], pkg)
	}
	t.Skipf("%s is not installed: apt-get install %s to run this test", names[0], pkg)
	return ""
}

// Children returns the PIDs of a process's children (an engine's workers),
// from the parent field of each /proc/PID/stat.
func Children(t testing.TB, pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("reading /proc: %v", err)
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
	return pids
}
