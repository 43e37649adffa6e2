package engine

import (
	"sync"
)

// Loop is an event loop: jobs posted from any goroutine run one at a time,
// in order, on the loop's own goroutine. Asynchronous work started from a
// job registers with Hold, so that the loop knows something may still post.
//
// The zero value is not usable; call StartLoop.
type Loop struct {
	mu      sync.Mutex
	cond    sync.Cond
	queue   []func()
	pending int
	closed  bool
	done    chan struct{}
	onPanic func(any)
}

// StartLoop starts a loop on a new goroutine. onPanic, if not nil, is called
// on the loop with the value of a job's panic; the loop keeps running.
func StartLoop(onPanic func(any)) *Loop {
	l := &Loop{done: make(chan struct{}), onPanic: onPanic}
	l.cond.L = &l.mu
	go l.run()
	return l
}

func (l *Loop) run() {
	defer close(l.done)
	var jobs []func()
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && !l.closed {
			l.cond.Wait()
		}
		if l.closed {
			l.mu.Unlock()
			return
		}
		jobs, l.queue = l.queue, jobs[:0]
		l.mu.Unlock()
		for i, job := range jobs {
			l.do(job)
			jobs[i] = nil
		}
	}
}

func (l *Loop) do(job func()) {
	defer func() {
		if r := recover(); r != nil {
			if l.onPanic == nil {
				panic(r)
			}
			l.onPanic(r)
		}
	}()
	job()
}

// Post queues job to run on the loop. It returns ErrClosed after Close.
func (l *Loop) Post(job func()) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.queue = append(l.queue, job)
	l.cond.Signal()
	return nil
}

// Hold registers one piece of pending asynchronous work and returns the
// function that completes it: complete(job) posts job and ends the hold.
// Only the first call of complete has an effect.
func (l *Loop) Hold() (complete func(job func())) {
	l.mu.Lock()
	l.pending++
	l.mu.Unlock()
	var once sync.Once
	return func(job func()) {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.pending--
			if l.closed || job == nil {
				return
			}
			l.queue = append(l.queue, job)
			l.cond.Signal()
		})
	}
}

// Idle reports whether nothing is queued and no work is held: nothing can
// ever run on the loop again unless a new job is posted from outside.
func (l *Loop) Idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending == 0 && len(l.queue) == 0
}

// Close stops the loop and waits for the running job to return. Queued jobs
// are dropped; later Posts return ErrClosed. Close must not be called from a
// job on the loop itself.
func (l *Loop) Close() {
	l.mu.Lock()
	l.closed = true
	l.queue = nil
	l.cond.Signal()
	l.mu.Unlock()
	<-l.done
}
