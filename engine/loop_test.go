package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modrun/modrun/engine"
)

func TestLoopRunsJobsOneAtATimeInOrder(t *testing.T) {
	l := engine.NewLoop(nil)
	defer l.Close()
	var got []int
	var running atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		if err := l.Post(func() {
			defer wg.Done()
			if running.Add(1) != 1 {
				t.Error("two jobs ran at once")
			}
			got = append(got, i) // no lock: only the loop touches got
			running.Add(-1)
		}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i, v := range got {
		if v != i {
			t.Fatalf("job %d ran at position %d", v, i)
		}
	}
}

func TestLoopHoldAndIdle(t *testing.T) {
	l := engine.NewLoop(nil)
	defer l.Close()
	idle := make(chan bool, 1)
	var complete func(func())
	l.Post(func() {
		complete = l.Hold()
		idle <- l.Idle()
	})
	if <-idle {
		t.Fatal("Idle with work held")
	}
	done := make(chan bool, 1)
	complete(func() { done <- l.Idle() })
	if !<-done {
		t.Fatal("not Idle once the held work completed and nothing is queued")
	}
	complete(func() { t.Error("a second complete ran its job") })
}

func TestLoopRecoversPanics(t *testing.T) {
	got := make(chan any, 1)
	l := engine.NewLoop(func(v any) { got <- v })
	defer l.Close()
	l.Post(func() { panic("boom") })
	if v := <-got; v != "boom" {
		t.Fatalf("onPanic got %v", v)
	}
	ran := make(chan bool, 1)
	l.Post(func() { ran <- true })
	<-ran
}

func TestLoopClosed(t *testing.T) {
	l := engine.NewLoop(nil)
	l.Close()
	if err := l.Post(func() {}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Post after Close: %v", err)
	}
}

func TestFlightSharesOneCall(t *testing.T) {
	var f engine.Flight
	leader, isLeader := f.Join("refresh")
	if !isLeader {
		t.Fatal("first caller is not the leader")
	}
	var wg sync.WaitGroup
	results := make(chan string, 10)
	for i := 0; i < 10; i++ {
		c, lead := f.Join("refresh")
		if lead {
			t.Fatal("a second leader while one is in flight")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Wait(context.Background())
			if err != nil {
				t.Error(err)
			}
			results <- string(v)
		}()
	}
	leader.Finish(json.RawMessage(`"tok"`), nil)
	wg.Wait()
	close(results)
	for r := range results {
		if r != `"tok"` {
			t.Errorf("follower got %s", r)
		}
	}
	if _, lead := f.Join("refresh"); !lead {
		t.Error("after Finish a new call should start")
	}
}
