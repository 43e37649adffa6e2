package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/store"
	"github.com/modrun/modrun/worker"
)

func faultPackage(t *testing.T) *engine.Package {
	t.Helper()
	return jsPackage(t, `export default {
	ok() { return 1 },
	async nap() { await storeValue("napping", true); await new Promise(r => setTimeout(r, 60000)) },
	bomb() { const a = []; for (;;) a.push(new Array(1 << 16).fill(7)) },
}`)
}

// startNap calls faultPackage's m.nap on inst and returns once it has
// begun (its store write is in st); the call's error comes on the
// channel.
func startNap(t *testing.T, inst engine.Instance, st engine.Store) <-chan error {
	t.Helper()
	napped := make(chan error, 1)
	go func() {
		_, err := inst.Call(context.Background(), "m.nap")
		napped <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := st.Get(context.Background(), "w", "napping"); err == nil {
			return napped
		}
		if time.Now().After(deadline) {
			t.Fatal("the nap did not start")
		}
	}
}

// TestKilledWorkersCostNoBackoff: a worker that served calls and is
// killed from outside, nine times running, is replaced at once each time:
// the first call after the last kill succeeds within a 2 s deadline, and
// so does every call after it (DESIGN §16; the fault campaign of
// issue 26 found 0 of 43 calls succeeding for 90 s).
func TestKilledWorkersCostNoBackoff(t *testing.T) {
	pkg := faultPackage(t)
	started := newChildren(t)
	reasons := make(chan string, 32)
	p := worker.NewPool(worker.Options{Size: 1, Store: store.NewMemory(), OnRestart: func(r string) { reasons <- r }})
	defer p.Close()
	inst := p.NewInstance(pkg, "", nil, nil)
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := inst.Call(ctx, "m.ok")
		if err == nil && string(out) != "1" {
			err = errors.New("answered " + string(out))
		}
		return err
	}
	for i := range 9 {
		if err := call(); err != nil {
			t.Fatalf("call before kill %d: %v", i+1, err)
		}
		pids := started()
		if len(pids) != 1 {
			t.Fatalf("before kill %d the pool runs %d workers, want 1", i+1, len(pids))
		}
		syscall.Kill(pids[0], syscall.SIGKILL)
		select {
		case <-reasons:
		case <-time.After(30 * time.Second):
			t.Fatalf("kill %d: the pool did not notice its worker died", i+1)
		}
	}
	for i := range 20 {
		if err := call(); err != nil {
			t.Fatalf("call %d after the last kill: %v", i+1, err)
		}
	}
}

// TestCrashLoopBackoffAnswersByTheDeadline: workers that die before
// answering anything (every run a memory bomb) are restarted with a
// growing backoff; a call whose deadline comes before the next start
// fails at once with ErrUnavailable instead of waiting past it, a call
// with time to wait gets the new worker, and no worker is ever killed for
// a deadline.
func TestCrashLoopBackoffAnswersByTheDeadline(t *testing.T) {
	pkg := faultPackage(t)
	reasons := make(chan string, 32)
	p := worker.NewPool(worker.Options{Size: 1, MaxMemory: 64 << 20, Store: store.NewMemory(), OnRestart: func(r string) { reasons <- r }})
	defer p.Close()
	bombs := p.NewInstance(pkg, "bombs", nil, nil)
	for i := range 5 {
		_, err := bombs.Call(context.Background(), "m.bomb")
		if !errors.Is(err, engine.ErrMemoryLimit) {
			t.Fatalf("bomb %d: %v, want the memory limit", i+1, err)
		}
		if r := <-reasons; r != "memory" {
			t.Fatalf("bomb %d: worker replaced for %q", i+1, r)
		}
	}
	// Five failures in a row: the next start waits 800 ms.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	ok := p.NewInstance(pkg, "ok", nil, nil)
	if _, err := ok.Call(ctx, "m.ok"); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("a call due before the backoff ends: %v, want ErrUnavailable", err)
	}
	out, err := ok.Call(context.Background(), "m.ok")
	if err != nil || string(out) != "1" {
		t.Fatalf("a call that can wait for the backoff: %s, %v", out, err)
	}
	select {
	case r := <-reasons:
		t.Fatalf("a worker was replaced (%s) after the crash loop ended", r)
	default:
	}
}

// TestRunawayRunOccupiesOneWorker: while one run spins on its instance's
// loop, the instance's other calls go to the next worker instead of
// waiting behind it (issue 26: a runaway run took its package from 1,700
// runs/s to 7).
func TestRunawayRunOccupiesOneWorker(t *testing.T) {
	pkg := jsPackage(t, `export default { async spin() { await storeValue("spinning", true); for (;;) {} }, ok() { return 1 } }`)
	st := store.NewMemory()
	p := worker.NewPool(worker.Options{Size: 2, Store: st})
	defer p.Close()
	inst := p.NewInstance(pkg, "", nil, nil)
	if out, err := inst.Call(context.Background(), "m.ok"); err != nil || string(out) != "1" {
		t.Fatalf("before the spin: %s, %v", out, err)
	}
	spun := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := inst.Call(ctx, "m.spin")
		spun <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := st.Get(context.Background(), "w", "spinning"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spin did not start")
		}
	}
	// Calls that reach the worker in the spin's first worker.BusyAfter
	// wait behind it (and fail by their 2 s deadline); once the spin has
	// held the loop that long, every call goes round it. (Before, every
	// call failed until the spin's own deadline.)
	failures, inARow := 0, 0
	for inARow < 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		out, err := inst.Call(ctx, "m.ok")
		cancel()
		if err == nil && string(out) == "1" {
			inARow++
			continue
		}
		inARow = 0
		if failures++; failures > 10 {
			t.Fatalf("%d calls failed during the spin, the last: %s, %v", failures, out, err)
		}
	}
	select {
	case err := <-spun:
		t.Fatalf("the spin ended early: %v", err)
	default:
	}
}

// TestMemoryBombNeighboursAreToldTheTruth: a run on a worker that another
// run's allocation took past its memory limit is not told that it
// exceeded the limit itself.
func TestMemoryBombNeighboursAreToldTheTruth(t *testing.T) {
	pkg := faultPackage(t)
	st := store.NewMemory()
	p := worker.NewPool(worker.Options{Size: 1, MaxMemory: 64 << 20, Store: st})
	defer p.Close()
	inst := p.NewInstance(pkg, "", nil, nil)
	napped := startNap(t, inst, st)
	if _, err := inst.Call(context.Background(), "m.bomb"); err == nil {
		t.Fatal("the bomb succeeded")
	}
	err := <-napped
	if err == nil || !strings.Contains(err.Error(), "another run on this worker exceeded its memory limit") {
		t.Fatalf("the napping run was told: %v", err)
	}
	if errors.Is(err, engine.ErrMemoryLimit) {
		t.Fatalf("the napping run is said to have exceeded the limit itself: %v", err)
	}
}

// TestFrameLengthIsNotTrusted: a frame that claims 250 MiB and sends
// nothing costs a megabyte, not 250 (issue 28: a worker's length prefix
// made the server allocate it before any data came).
func TestFrameLengthIsNotTrusted(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := worker.ReadFrameForTest(strings.NewReader("only a few bytes"), 250<<20)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a short frame was read whole")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("reading a frame that claimed 250 MiB allocated %d MiB", grew>>20)
	}
}

// rogueHost makes instances whose every call writes to another app's
// store: a compromised worker.
type rogueHost struct{}

func (rogueHost) NewInstance(files map[string][]byte, app string, inputs map[string]any, st engine.Store, flights engine.Flights, obs engine.Observer, log *slog.Logger) (engine.Instance, error) {
	return rogueInstance{st}, nil
}

type rogueInstance struct{ st engine.Store }

func (r rogueInstance) Call(ctx context.Context, target string, args ...json.RawMessage) (json.RawMessage, error) {
	if err := r.st.Set(ctx, "victim", "k", json.RawMessage(`"stolen"`)); err != nil {
		return nil, err
	}
	return json.RawMessage(`1`), nil
}
func (rogueInstance) Redact(s string) string { return s }
func (rogueInstance) Close() error           { return nil }

// TestWorkerNamingAnotherAppIsStopped: the server checks the app of every
// store operation a worker sends against the instances it holds, and
// stops a worker that names another (issue 28: the server trusted it).
func TestWorkerNamingAnotherAppIsStopped(t *testing.T) {
	st := store.NewMemory()
	p, reasons := roguePool(t, "1", st)
	inst := p.NewInstance(faultPackage(t), "mine", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := inst.Call(ctx, "m.ok"); err == nil {
		t.Fatal("a call whose worker wrote to another app succeeded")
	}
	if r := <-reasons; r != "protocol" {
		t.Fatalf("the worker was replaced for %q, want protocol", r)
	}
	if _, err := st.Get(context.Background(), "victim", "k"); err == nil {
		t.Fatal("the other app's store was written")
	}
}

// TestFrameWithoutPayloadStopsTheWorker: a frame whose operation's
// payload is missing (a store operation with no store part) breaks the
// protocol; the server stops the worker instead of reading fields that are
// not there (issue 27: typed frames).
func TestFrameWithoutPayloadStopsTheWorker(t *testing.T) {
	p, reasons := roguePool(t, "2", store.NewMemory())
	inst := p.NewInstance(faultPackage(t), "mine", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go inst.Call(ctx, "m.ok") // starts a worker; its outcome is not the point
	select {
	case r := <-reasons:
		if r != "protocol" {
			t.Fatalf("the worker was replaced for %q, want protocol", r)
		}
	case <-time.After(time.Minute):
		t.Fatal("a worker that sent a store frame without its operation was not stopped")
	}
}

// roguePool is a one-worker pool whose workers are this test binary as
// the rogue worker MODRUN_TEST_ROGUE=mode (see TestMain); reasons gets
// each worker replacement's reason.
func roguePool(t *testing.T, mode string, st engine.Store) (*worker.Pool, chan string) {
	reasons := make(chan string, 4)
	report := func(r string) {
		select {
		case reasons <- r:
		default: // a crash-looping rogue restarts more often than a test reads
		}
	}
	p := worker.NewPool(worker.Options{Size: 1, Store: st, OnRestart: report,
		Command: func() *exec.Cmd {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "MODRUN_TEST_ROGUE="+mode)
			return cmd
		}})
	t.Cleanup(func() { p.Close() })
	return p, reasons
}
