package js

import (
	"runtime"
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
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	var started sync.WaitGroup
	const burst = 50
	started.Add(burst)
	for range burst {
		in.goWork(func() { started.Done(); <-release })
	}
	started.Wait()
	if n := runtime.NumGoroutine(); n < before+burst {
		t.Fatalf("%d goroutines during the burst, want at least %d", n, before+burst)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 5 s after the burst, %d before it: idle workers did not exit", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
