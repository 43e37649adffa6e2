// Package testbin finds the programs that tests start (etcd, Chromium).
// Without one, a test skips naming the Debian package that provides it —
// unless $CI is true, where .ci/run installs them and the test fails.
package testbin

import (
	"os"
	"os/exec"
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
