package worker

import (
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingWriter counts the writes that reach the pipe: one a system
// call, with a real one.
type countingWriter struct {
	w      io.Writer
	writes atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.w.Write(b)
}

// TestFramesSentTogetherShareAWrite: frames that many goroutines send
// together with sendTogether (answers one loop batch settled, calls
// that requests made at once) all arrive, each whole, in fewer writes
// than frames; a frame sent alone is not held back for company.
func TestFramesSentTogetherShareAWrite(t *testing.T) {
	r, w := io.Pipe()
	cw := &countingWriter{w: w}
	out, in := newConn(nil, cw, nil), newConn(r, nil, nil)
	got := make(chan *message, 128)
	go func() {
		defer close(got)
		for {
			m, err := in.recv()
			if err != nil {
				return
			}
			got <- m
		}
	}()
	defer w.Close()

	// Alone: it arrives with no other frame after it.
	if err := out.sendTogether(&message{Op: opCall, Re: 1000}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Re != 1000 {
			t.Fatalf("got the answer to %d, want 1000", m.Re)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a frame sent alone was held back")
	}

	const n = 64
	before := cw.writes.Load()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := out.sendTogether(&message{Op: opCall, Re: uint64(i + 1), Answer: &answer{Result: []byte(`"result"`)}}); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	seen := map[uint64]bool{}
	for range n {
		select {
		case m := <-got:
			if m.Answer == nil || string(m.Answer.Result) != `"result"` || seen[m.Re] {
				t.Fatalf("a frame arrived broken or twice: %+v", m)
			}
			seen[m.Re] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d frames arrived", len(seen), n)
		}
	}
	// Two writes per frame (its length, its body) would be 128 without
	// a buffer; one flush per frame, 64. Released together, the senders
	// share flushes: on a loaded machine too, far fewer than one each.
	if writes := cw.writes.Load() - before; writes > n/2 {
		t.Fatalf("%d frames sent together took %d writes, want at most %d", n, writes, n/2)
	}
}
