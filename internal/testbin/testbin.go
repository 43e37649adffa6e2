// Package testbin finds the programs that tests start (etcd, Chromium)
// and the processes they start (Children).
// Without one, a test skips naming the Debian package that provides it —
// unless $CI is true, where .ci/run installs them and the test fails.
package testbin

import (
	"os"
	"os/exec"
	"testing"

	"github.com/modrun/modrun/internal/procs"
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

// Children returns the PIDs of a process's children (an engine's workers).
func Children(t testing.TB, pid int) []int {
	pids, err := procs.Children(pid)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}
