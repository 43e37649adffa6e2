package engine

import (
	"sync"
	"sync/atomic"
)

// Loop is an event loop: jobs posted from any goroutine run one at a time,
// in the order posted. Asynchronous work started from a job registers with
// Hold and hands its result back with Release, so that the loop knows
// something may still post.
//
// A Loop has no goroutine of its own: the goroutine that posts to an idle
// loop runs the queued jobs itself until the queue is empty, and a post to
// a busy loop only queues. So jobs never run at the same time, and the
// result of Go work (an HTTP response) is handed to JavaScript on the
// goroutine that produced it, without a hop to another goroutine.
//
// The running goroutine takes the queued jobs a batch at a time, so that
// posting and running do not contend for the lock once per job, and the
// queue's memory is bounded by the jobs posted while one batch runs.
//
// The zero value is not usable; call NewLoop.
type Loop struct {
	mu      sync.Mutex
	idle    sync.Cond // signalled when the running goroutine stops draining
	queue   []func()  // jobs posted and not yet taken
	spare   []func()  // the last batch's array, reused for the next queue
	running bool
	pending int
	closed  atomic.Bool // set under mu; read without it between jobs
	onPanic func(any)

	// left is how many jobs of the batch being run are still to run. Only
	// the running goroutine touches it (Idle is called from a job).
	left int
}

// NewLoop returns a loop. onPanic, if not nil, is called with the value of
// a job's panic, and the loop goes on; if nil, the panic propagates to the
// goroutine that happened to run the job.
func NewLoop(onPanic func(any)) *Loop {
	l := &Loop{onPanic: onPanic}
	l.idle.L = &l.mu
	return l
}

// enqueue adds job and, if no goroutine is running jobs, runs them on this
// one. l.mu is held on entry and released on return.
func (l *Loop) enqueue(job func()) {
	l.queue = append(l.queue, job)
	if l.running {
		l.mu.Unlock()
		return
	}
	l.running = true
	for len(l.queue) > 0 && !l.closed.Load() {
		// Take the whole queue; posts meanwhile go to the spare array.
		batch := l.queue
		l.queue, l.spare = l.spare[:0], nil
		l.mu.Unlock()
		l.runBatch(batch)
		l.mu.Lock()
		clear(batch) // drop the references, keep the array
		l.spare = batch[:0]
	}
	l.stop()
}

// stop ends a drain. l.mu is held.
func (l *Loop) stop() {
	l.running = false
	l.idle.Broadcast()
	l.mu.Unlock()
}

// runBatch runs the jobs of batch in order, until the loop is closed. If a
// job panics (no onPanic), the jobs after it go back to the front of the
// queue, the drain ends and the panic goes on up the running goroutine.
func (l *Loop) runBatch(batch []func()) {
	i := 0
	defer func() {
		l.left = 0
		if i < len(batch) { // panicking
			l.mu.Lock()
			l.queue = append(batch[i+1:len(batch):len(batch)], l.queue...)
			l.stop()
		}
	}()
	for ; i < len(batch); i++ {
		if l.closed.Load() {
			i = len(batch)
			return
		}
		l.left = len(batch) - i - 1
		l.do(batch[i])
	}
}

func (l *Loop) do(job func()) {
	if l.onPanic != nil {
		defer func() {
			if r := recover(); r != nil {
				l.onPanic(r)
			}
		}()
	}
	job()
}

// Post queues job. If the loop is idle, job (and whatever it queues) runs
// before Post returns, on the calling goroutine. Post may be called from a
// job. It returns ErrClosed after Close.
func (l *Loop) Post(job func()) error {
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return ErrClosed
	}
	l.enqueue(job)
	return nil
}

// Hold registers one piece of pending asynchronous work, so that the loop
// is not Idle while it runs. Each Hold is ended by exactly one Release.
func (l *Loop) Hold() {
	l.mu.Lock()
	l.pending++
	l.mu.Unlock()
}

// Release ends one Hold and posts job (nil: nothing). After Close, job is
// dropped silently: the work it would hand back has no one to go to.
func (l *Loop) Release(job func()) {
	l.mu.Lock()
	l.pending--
	if l.closed.Load() || job == nil {
		l.mu.Unlock()
		return
	}
	l.enqueue(job)
}

// Idle reports whether nothing is queued and no work is held: nothing can
// ever run on the loop again unless a new job is posted from outside. It
// must be called from a job, and does not count that job.
func (l *Loop) Idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending == 0 && len(l.queue) == 0 && l.left == 0
}

// Close stops the loop: queued jobs are dropped, later Posts return
// ErrClosed, and Close waits for a running job to return. It must not be
// called from a job.
func (l *Loop) Close() {
	l.mu.Lock()
	l.closed.Store(true)
	l.queue = nil
	for l.running {
		l.idle.Wait()
	}
	l.mu.Unlock()
}
