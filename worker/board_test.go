package worker_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

	napped := make(chan error, 1)
	go func() {
		_, err := inst.Call(context.Background(), "m.nap")
		napped <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := st.Get(context.Background(), "w", "napping"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the nap did not start")
		}
	}
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
