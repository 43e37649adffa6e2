package etcdstore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modrun/modrun/etcdstore"
	"github.com/modrun/modrun/internal/etcdtest"
)

// TestMain lets this test binary be the lock holder of TestPausedHolder.
func TestMain(m *testing.M) {
	if url := os.Getenv("ETCDSTORE_TEST_HOLDER"); url != "" {
		holder(url)
		return
	}
	os.Exit(m.Run())
}

// holder takes the lock, says so, and on "write" from stdin writes under
// it and prints the outcome.
func holder(url string) {
	st, err := etcdstore.Open(url)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Lock(ctx, "app", "refresh_token"); err != nil {
		fmt.Println("lock:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := st.Set(wctx, "app", "refresh_token", json.RawMessage(`"rt-stale"`))
		cancel()
		fmt.Println("write:", err)
	}
}

// TestPausedHolder: a process holding the lock is stopped (SIGSTOP) past
// the lease; another takes the lock and writes; the first, resumed, cannot
// overwrite the newer value.
func TestPausedHolder(t *testing.T) {
	srv := etcdtest.Start(t)
	url := srv.URL("pause")
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), "ETCDSTORE_TEST_HOLDER="+url)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "locked" {
		t.Fatalf("holder: %q", lines.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The lock is taken once the paused holder's lease (LockTTL) expires.
	other := open(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), etcdstore.LockTTL+10*time.Second)
	defer cancel()
	start := time.Now()
	unlock, err := other.Lock(ctx, "app", "refresh_token")
	if err != nil {
		t.Fatalf("the lock of a paused holder: %v", err)
	}
	if d := time.Since(start); d < etcdstore.LockTTL/2 {
		t.Fatalf("the lock was taken after %v, while the paused holder's lease was still live", d)
	}
	if err := other.Set(ctx, "app", "refresh_token", json.RawMessage(`"rt-new"`)); err != nil {
		t.Fatal(err)
	}
	unlock()
	cmd.Process.Signal(syscall.SIGCONT)
	fmt.Fprintln(stdin, "write")
	if !lines.Scan() {
		t.Fatal("the resumed holder said nothing")
	}
	if got := lines.Text(); !strings.Contains(got, "lock on the key was lost") {
		t.Fatalf("the resumed holder's write: %q; want it refused", got)
	}
	if v, err := other.Get(ctx, "app", "refresh_token"); err != nil || string(v) != `"rt-new"` {
		t.Fatalf("value = %s, %v; want the newer \"rt-new\"", v, err)
	}
}
