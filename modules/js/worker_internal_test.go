package js

import (
	"sync"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
)

// TestWorkersEndWhenIdle: a burst of blocking work starts a worker per
// piece; once idle they exit instead of staying parked for the life of
// the instance.
func TestWorkersEndWhenIdle(t *testing.T) {
	in := NewInstance(&engine.Package{Manifest: engine.Manifest{Name: "w"}}, Options{})
	defer in.Close()
	in.workerIdle = 20 * time.Millisecond
	release := make(chan struct{})
	var started sync.WaitGroup
	const burst = 50
	started.Add(burst)
	for range burst {
		in.goWork(func() { started.Done(); <-release })
	}
	started.Wait()
	// Counted by the instance, not by runtime.NumGoroutine: goroutines of
	// the package's other tests come and go meanwhile.
	if n := in.workers.Load(); n != burst {
		t.Fatalf("%d workers during the burst, want %d", n, burst)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for in.workers.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers 5 s after the burst: idle workers did not exit", in.workers.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
