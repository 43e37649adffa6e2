package worker_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/testbin"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/store"
	"github.com/modrun/modrun/worker"
)

// TestMain makes this test binary its own worker (and, with
// MODRUN_TEST_ROGUE set, a worker that breaks the protocol: 1, by writing
// to another app; 2, by a frame without its payload).
func TestMain(m *testing.M) {
	switch os.Getenv("MODRUN_TEST_ROGUE") {
	case "1":
		worker.Serve(os.Stdin, os.Stdout, rogueHost{}, 0, slog.LevelError)
		os.Exit(0)
	case "2":
		frame := []byte(`{"id":7,"op":"store"}`)
		os.Stdout.Write(binary.BigEndian.AppendUint32(nil, uint32(len(frame))))
		os.Stdout.Write(frame)
		worker.Serve(os.Stdin, os.Stdout, rogueHost{}, 0, slog.LevelError)
		os.Exit(0)
	}
	modrun.WorkerMain()
	os.Exit(m.Run())
}

// TestFirstCallsOfAnInstance: many concurrent first calls of one
// instance on fresh workers: its load reaches each worker before its
// calls do.
func TestFirstCallsOfAnInstance(t *testing.T) {
	pkg := jsPackage(t, `export default { async f(i) { await storeValue("k" + i, i); return i } }`)
	st := store.NewMemory()
	p := worker.NewPool(worker.Options{Size: 2, Store: st})
	defer p.Close()
	inst := p.NewInstance(pkg, "", nil, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := inst.Call(context.Background(), "m.f", json.RawMessage(fmt.Sprint(i)))
			if err != nil || string(out) != fmt.Sprint(i) {
				errs <- fmt.Errorf("call %d: %s, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, _ := st.List(context.Background(), "w")
	if len(all) != 64 {
		t.Errorf("%d values in the store, want 64", len(all))
	}
}

// jsPackage loads a package of one JS module, m, whose source is js.
func jsPackage(t *testing.T, js string) *engine.Package {
	t.Helper()
	pkg, err := packages.Load(map[string][]byte{
		"package.yaml": []byte("name: w\nversion: 1.0.0\n"),
		"m.js":         []byte(js),
	}, modrun.New(modrun.Options{}).Kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

// newChildren returns a func listing this process's children started
// since: workers of earlier tests may still be exiting.
func newChildren(t *testing.T) func() []int {
	before := map[int]bool{}
	for _, pid := range testbin.Children(t, os.Getpid()) {
		before[pid] = true
	}
	return func() (pids []int) {
		for _, pid := range testbin.Children(t, os.Getpid()) {
			if !before[pid] {
				pids = append(pids, pid)
			}
		}
		return pids
	}
}

// TestInstanceKeepsItsWorker: an instance's calls all go to its home
// worker, where they share one loop; a second instance's go to the next.
func TestInstanceKeepsItsWorker(t *testing.T) {
	pkg := jsPackage(t, `export default { async f(i) { await new Promise(r => setTimeout(r, 5)); return i } }`)
	started := newChildren(t)
	p := worker.NewPool(worker.Options{Size: 2, Store: store.NewMemory()})
	defer p.Close()
	calls := func(inst engine.Instance) {
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := inst.Call(context.Background(), "m.f", json.RawMessage(fmt.Sprint(i))); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	calls(p.NewInstance(pkg, "", nil, nil))
	if n := len(started()); n != 1 {
		t.Fatalf("32 calls of one instance started %d workers, want 1", n)
	}
	calls(p.NewInstance(pkg, "", nil, nil))
	if n := len(started()); n != 2 {
		t.Fatalf("a second instance's calls left %d workers, want 2", n)
	}
}

// TestWarmStartsAWorker: Warm starts the next call's worker before any
// call, in the background, and Close stops it.
func TestWarmStartsAWorker(t *testing.T) {
	started := newChildren(t)
	p := worker.NewPool(worker.Options{Size: 2, Store: store.NewMemory()})
	defer p.Close()
	time.Sleep(50 * time.Millisecond)
	if pids := started(); len(pids) != 0 {
		t.Fatalf("a new pool started processes %v", pids)
	}
	p.Warm()
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); len(pids) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		pids = started()
	}
	if len(pids) != 1 {
		t.Fatalf("after Warm the pool runs %d workers %v, want 1", len(pids), pids)
	}
	p.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(started()) == 0 {
			return
		}
	}
	t.Fatalf("the warmed worker %v outlived Close", pids)
}

// TestStuckWorkerIsReplaced: a call whose RegExp goes on past its
// deadline returns at the deadline, and its worker, stuck, is replaced.
func TestStuckWorkerIsReplaced(t *testing.T) {
	pkg := jsPackage(t, `export default { spin() { return /^(a+)+(?!x)b/.test("a".repeat(40)) }, ok() { return 1 } }`)
	reasons := make(chan string, 4)
	p := worker.NewPool(worker.Options{Size: 1, Store: store.NewMemory(), OnRestart: func(r string) { reasons <- r }})
	defer p.Close()
	inst := p.NewInstance(pkg, "", nil, nil)
	// The worker up first: a call that has not started by its deadline
	// is dropped, not run, and its worker rightly kept — on a loaded
	// machine a cold worker's start can take that long.
	if _, err := inst.Call(context.Background(), "m.ok"); err != nil {
		t.Fatal(err)
	}
	const deadline = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	if _, err := inst.Call(ctx, "m.spin"); !errors.Is(err, engine.ErrDeadline) {
		t.Fatalf("spin: %v", err)
	}
	if d := time.Since(start); d > deadline+5*time.Second {
		t.Errorf("spin returned %v after it began, its deadline %v", d, deadline)
	}
	select {
	case r := <-reasons:
		if r != "deadline" {
			t.Errorf("replaced for %q", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck worker was not replaced")
	}
	if out, err := inst.Call(context.Background(), "m.ok"); err != nil || string(out) != "1" {
		t.Fatalf("after the replacement: %s, %v", out, err)
	}
}

func ExampleHeapFloor() {
	// A parent with the runner's 32 MiB floor: its workers keep it under
	// the default 256 MiB limit, and half a 40 MiB one.
	fmt.Println(worker.HeapFloor(32<<20, 256<<20)>>20, worker.HeapFloor(32<<20, 40<<20)>>20)
	// Without a limit, the parent's; without a floor, none.
	fmt.Println(worker.HeapFloor(32<<20, 0)>>20, worker.HeapFloor(0, 256<<20))
	// Output:
	// 32 20
	// 32 0
}
