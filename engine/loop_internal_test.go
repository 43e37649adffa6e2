package engine

import "testing"

// TestLoopQueueStaysSmallUnderLoad: a loop that never runs dry (each job
// posts the next) must not keep every job it ever ran in its queue.
func TestLoopQueueStaysSmallUnderLoad(t *testing.T) {
	l := NewLoop(nil)
	defer l.Close()
	const jobs = 100_000
	n := 0
	var next func()
	next = func() {
		if n++; n < jobs {
			l.Post(next)
		}
	}
	l.Post(next)
	if n != jobs {
		t.Fatalf("ran %d jobs, want %d", n, jobs)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := cap(l.queue); c > 64 {
		t.Fatalf("after %d jobs in one busy stretch the queue's array holds %d slots", jobs, c)
	}
}
