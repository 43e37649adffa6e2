package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modrun/modrun/engine"
)

func TestLoopRunsJobsOneAtATimeInOrder(t *testing.T) {
	// Eight goroutines post at once, and jobs post more jobs: they must
	// never overlap (the race detector watches got, which has no lock),
	// and each poster's jobs run in the order it posted them.
	l := engine.NewLoop(nil)
	defer l.Close()
	const posters, perPoster = 8, 200
	got := make([][]int, posters)
	var running atomic.Int32
	var wg sync.WaitGroup
	job := func(p, i int) func() {
		return func() {
			defer wg.Done()
			if running.Add(1) != 1 {
				t.Error("two jobs ran at once")
			}
			got[p] = append(got[p], i)
			if i%50 == 0 {
				wg.Add(1)
				l.Post(func() { wg.Done() }) // a post from a job only queues
			}
			running.Add(-1)
		}
	}
	var start sync.WaitGroup
	start.Add(1)
	for p := range posters {
		wg.Add(perPoster)
		go func() {
			start.Wait()
			for i := range perPoster {
				if err := l.Post(job(p, i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	start.Done()
	wg.Wait()
	for p, seq := range got {
		if len(seq) != perPoster {
			t.Fatalf("poster %d: %d jobs ran, want %d", p, len(seq), perPoster)
		}
		for i, v := range seq {
			if v != i {
				t.Fatalf("poster %d: job %d ran at position %d", p, v, i)
			}
		}
	}
}

func TestLoopHoldAndIdle(t *testing.T) {
	l := engine.NewLoop(nil)
	defer l.Close()
	idle := make(chan bool, 1)
	l.Post(func() {
		l.Hold()
		l.Hold()
		idle <- l.Idle()
	})
	if <-idle {
		t.Fatal("Idle with work held")
	}
	done := make(chan bool, 1)
	l.Release(nil)
	l.Release(func() { done <- l.Idle() })
	if !<-done {
		t.Fatal("not Idle once the held work was released and nothing is queued")
	}
}

func TestLoopReleaseAfterClose(t *testing.T) {
	l := engine.NewLoop(nil)
	l.Hold()
	l.Close()
	l.Release(func() { t.Error("a job released after Close ran") })
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

// TestLoopPanicWithoutHandler: with no onPanic, a job's panic reaches the
// goroutine that ran it, and the loop goes on with the jobs after it, in
// order.
func TestLoopPanicWithoutHandler(t *testing.T) {
	l := engine.NewLoop(nil)
	defer l.Close()
	var ran []int
	post := func(job func()) (panicked any) {
		defer func() { panicked = recover() }()
		l.Post(job)
		return nil
	}
	p := post(func() {
		ran = append(ran, 1)
		l.Post(func() { panic("boom") }) // queued behind this job
		l.Post(func() { ran = append(ran, 3) })
	})
	if p != "boom" {
		t.Fatalf("the poster got %v, want the job's panic", p)
	}
	if p := post(func() { ran = append(ran, 4) }); p != nil {
		t.Fatalf("panic %v", p)
	}
	if fmt.Sprint(ran) != "[1 3 4]" {
		t.Fatalf("ran %v, want [1 3 4]", ran)
	}
}
