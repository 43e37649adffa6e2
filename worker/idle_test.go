package worker_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modrun/modrun/internal/monitor"
	"github.com/modrun/modrun/internal/procs"
	"github.com/modrun/modrun/store"
	"github.com/modrun/modrun/worker"
)

// TestIdleWorkerSleeps: a worker with nothing to run sleeps. Its threads
// wake a few dozen times a second (its runtime's monitor every 10 ms,
// its memory watch every 100 ms), not the 900 times of its 5 ms memory
// ticker and its monitor's deep sleeps before issue 33; it starts with
// the setting that keeps its monitor awake (internal/monitor), which is
// also what spares a busy worker those wake-ups.
func TestIdleWorkerSleeps(t *testing.T) {
	pkg := jsPackage(t, `export default { f() { return 1 } }`)
	children := newChildren(t)
	p := worker.NewPool(worker.Options{Size: 1, Store: store.NewMemory()})
	defer p.Close()
	if _, err := p.NewInstance(pkg, "", nil, nil).Call(context.Background(), "m.f"); err != nil {
		t.Fatal(err)
	}
	pids := children()
	if len(pids) != 1 {
		t.Fatalf("%d workers, want 1", len(pids))
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pids[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), "GODEBUG="+monitor.Setting) {
		t.Errorf("the worker's environment lacks GODEBUG=%s", monitor.Setting)
	}
	// Past the worker's idle give-back (2 s after its last call).
	time.Sleep(3 * time.Second)
	before, start := procs.Wakeups(pids[0]), time.Now()
	time.Sleep(2 * time.Second)
	var woke uint64
	for tid, n := range procs.Wakeups(pids[0]) {
		woke += n - min(n, before[tid]) // a thread started since counts whole
	}
	perSecond := float64(woke) / time.Since(start).Seconds()
	t.Logf("an idle worker's threads woke %.0f times a second", perSecond)
	if perSecond > 300 {
		t.Fatalf("an idle worker's threads woke %.0f times a second, want at most 300", perSecond)
	}
}
