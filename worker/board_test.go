package worker_test

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modrun/modrun/internal/procs"
	"github.com/modrun/modrun/store"
	"github.com/modrun/modrun/worker"
)

// TestBegunCallsStayWithTheBoard: on Linux workers mark the calls they
// begin on a shared board, not in "started" frames (one write and one
// wake-up of the parent fewer per call, issue 33; elsewhere, frames
// still), and a call its worker marked begun is still never moved when
// the worker dies: it fails, without running again elsewhere.
func TestBegunCallsStayWithTheBoard(t *testing.T) {
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
	switch n := worker.StartedFramesForTest() - before; {
	case runtime.GOOS == "linux" && n != 0:
		t.Fatalf(`the workers sent %d "started" frames, want none: the board is not in use`, n)
	case runtime.GOOS != "linux" && n == 0:
		t.Fatal(`no "started" frames without a board`)
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

// TestIdleWorkerGivesMemoryBack: a worker whose runs left a hundred MB
// of garbage gives it back to the system once it has run nothing for a
// while: an idle worker's resident set is what its instances hold
// (issue 33: 59 MB idle after a burst of 20,000 runs, 21 MB fresh). The
// worker says how much it gave back (its Go heap's released bytes); where
// the resident set means something (Linux, not under the race detector,
// whose shadow memory is resident and never given back — .ci/run runs
// this test without -race too) the drop is checked there as well.
func TestIdleWorkerGivesMemoryBack(t *testing.T) {
	pkg := jsPackage(t, `export default { churn() { return new Array(1 << 21).fill(7).length } }`)
	gaveBack := make(chan int, 64)
	children := newChildren(t)
	p := worker.NewPool(worker.Options{Size: 1, Store: store.NewMemory(), Logger: slog.New(&givenBack{mb: gaveBack})})
	defer p.Close()
	inst := p.NewInstance(pkg, "", nil, nil)
	if _, err := inst.Call(context.Background(), "m.ok"); err == nil {
		t.Fatal("a target the package lacks ran")
	}
	pids := children()
	if len(pids) != 1 {
		t.Fatalf("%d workers, want 1", len(pids))
	}
	rss := func() uint64 { return procs.RSS(pids[0]) }
	checkRSS := !raceEnabled && rss() > 0
	fresh := rss()
	var peak uint64
	for range 2 {
		if _, err := inst.Call(context.Background(), "m.churn"); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, rss())
	}
	if checkRSS && peak < fresh+64<<20 {
		t.Fatalf("the churn took the worker from %d to %d MB: it left too little garbage to test with", fresh>>20, peak>>20)
	}
	// A give-back before the churn (its first call's end) frees little;
	// the one after it frees the churn's garbage.
	deadline := time.After(30 * time.Second)
	for released := 0; released < 32; {
		select {
		case released = <-gaveBack:
		case <-deadline:
			t.Fatal("idle for 30 s, the worker did not give its runs' memory back")
		}
	}
	if !checkRSS {
		return
	}
	if now := rss(); now >= fresh+32<<20 {
		t.Fatalf("after giving memory back the worker holds %d MB (fresh %d, peak %d)", now>>20, fresh>>20, peak>>20)
	}
}

// givenBack is a log handler that passes on how many MB a worker's
// "memory given back" records say.
type givenBack struct{ mb chan<- int }

func (g *givenBack) Enabled(context.Context, slog.Level) bool { return true }

func (g *givenBack) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "idle: memory given back to the system" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "released_mb" {
			n, _ := strconv.Atoi(a.Value.String())
			g.mb <- n
		}
		return true
	})
	return nil
}

func (g *givenBack) WithAttrs([]slog.Attr) slog.Handler { return g }
func (g *givenBack) WithGroup(string) slog.Handler      { return g }
