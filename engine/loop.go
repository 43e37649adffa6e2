package engine

import "sync"

// Loop is an event loop: jobs posted from any goroutine run one at a time,
// in the order posted. Asynchronous work started from a job registers with
// Hold, so that the loop knows something may still post.
//
// A Loop has no goroutine of its own: the goroutine that posts to an idle
// loop runs the queued jobs itself until the queue is empty, and a post to
// a busy loop only queues. So jobs never run at the same time, and the
// result of Go work (an HTTP response) is handed to JavaScript on the
// goroutine that produced it, without a hop to another goroutine.
//
// The zero value is not usable; call NewLoop.
type Loop struct {
	mu      sync.Mutex
	idle    sync.Cond // signalled when the running goroutine stops draining
	queue   []func()  // jobs; those before head have run
	head    int
	running bool
	pending int
	closed  bool
	onPanic func(any)
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
	defer func() {
		l.running = false
		l.idle.Broadcast()
		l.mu.Unlock()
	}()
	// The queue's array is reused: a busy loop allocates nothing per job.
	for l.head < len(l.queue) && !l.closed {
		job := l.queue[l.head]
		l.queue[l.head] = nil
		l.head++
		l.mu.Unlock()
		l.do(job)
		l.mu.Lock()
	}
	l.queue, l.head = l.queue[:0], 0
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
	if l.closed {
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
	if l.closed || job == nil {
		l.mu.Unlock()
		return
	}
	l.enqueue(job)
}

// Idle reports whether nothing is queued and no work is held: nothing can
// ever run on the loop again unless a new job is posted from outside.
// Called from a job, it does not count that job.
func (l *Loop) Idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending == 0 && l.head == len(l.queue)
}

// Close stops the loop: queued jobs are dropped, later Posts return
// ErrClosed, and Close waits for a running job to return. It must not be
// called from a job.
func (l *Loop) Close() {
	l.mu.Lock()
	l.closed = true
	l.queue, l.head = nil, 0
	for l.running {
		l.idle.Wait()
	}
	l.mu.Unlock()
}
