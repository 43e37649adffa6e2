package worker_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/internal/procs"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/store"
	"github.com/modrun/modrun/worker"
)

// TestBegunCallsStayWithTheBoard: on Linux workers mark the calls they
// begin on a shared board, not in "started" frames (one write and one
// wake-up of the parent fewer per call, issue 33), and a call its worker
// marked begun is still never moved when the worker dies: it fails,
// without running again elsewhere.
func TestBegunCallsStayWithTheBoard(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("started boards are Linux's (memfd); elsewhere calls are announced by frame")
	}
	pkg := faultPackage(t)
	st := store.NewMemory()
	children := newChildren(t)
	p := worker.NewPool(worker.Options{Size: 2, Store: st})
	defer p.Close()
	inst := p.NewInstance(pkg, "", nil, nil)
	before := worker.StartedFramesForTest()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := inst.Call(context.Background(), "m.ok"); err != nil || string(out) != "1" {
				t.Errorf("a call: %s, %v", out, err)
			}
		}()
	}
	wg.Wait()
	if n := worker.StartedFramesForTest() - before; n != 0 {
		t.Fatalf(`the workers sent %d "started" frames, want none: the board is not in use`, n)
	}

	napped := startNap(t, inst, st)
	st.Delete(context.Background(), "w", "napping")
	for _, pid := range children() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	select {
	case err := <-napped:
		if err == nil || !strings.Contains(err.Error(), "exited") {
			t.Fatalf("the begun call, its worker killed: %v, want the worker's exit", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the begun call was not failed when its worker died (moved to another worker?)")
	}
	if _, err := st.Get(context.Background(), "w", "napping"); err == nil {
		t.Fatal("the begun call ran again on another worker")
	}
}

// TestIdleWorkerGivesMemoryBack: a worker whose runs left a hundred MB of
// garbage gives it back to the system once it has run nothing for a
// while: an idle worker's resident set is what its instances hold
// (issue 33: 59 MB idle after a burst of 20,000 runs, 21 MB fresh).
func TestIdleWorkerGivesMemoryBack(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the resident set from /proc")
	}
	if raceEnabled {
		// .ci/run runs it again without -race.
		t.Skip("the race detector's shadow memory is resident and never given back: run without -race")
	}
	files := map[string][]byte{
		"package.yaml": []byte("name: w\nversion: 1.0.0\n"),
		"m.js":         []byte(`export default { churn() { return new Array(1 << 21).fill(7).length } }`),
	}
	pkg, err := packages.Load(files, modrun.New(modrun.Options{}).Kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	children := newChildren(t)
	p := worker.NewPool(worker.Options{Size: 1, Store: store.NewMemory()})
	defer p.Close()
	inst := p.NewInstance(pkg, "", nil, nil)
	if _, err := inst.Call(context.Background(), "m.ok"); err == nil {
		t.Fatal("a target the package lacks ran")
	}
	pids := children()
	if len(pids) != 1 {
		t.Fatalf("%d workers, want 1", len(pids))
	}
	fresh := procs.RSS(pids[0])
	var peak uint64
	for range 2 {
		if _, err := inst.Call(context.Background(), "m.churn"); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, procs.RSS(pids[0]))
	}
	if peak < fresh+64<<20 {
		t.Fatalf("the churn took the worker from %d to %d MB: it left too little garbage to test with", fresh>>20, peak>>20)
	}
	var now uint64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if now = procs.RSS(pids[0]); now < fresh+32<<20 {
			return
		}
	}
	t.Fatalf("idle for 30 s, the worker still holds %d MB (fresh %d, peak %d)", now>>20, fresh>>20, peak>>20)
}
