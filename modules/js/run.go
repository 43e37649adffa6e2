// A run: one call of a target on an instance, its quotas and its result.

package js

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/modrun/modrun/engine"
)

// run is one call in progress, or the instance's onLoad chain.
type run struct {
	ctx     context.Context
	target  string // the step running now
	args    []json.RawMessage
	steps   []string      // targets still to call after this one (onLoad)
	settled chan struct{} // closed by finish, once result is set
	result  result
	onDone  func(json.RawMessage, error) // instead of res, for internal runs
	waiters []*run                       // calls waiting for onLoad
	promise any                          // the current step's promise, if it returned one; only its realm reads it (vm.settled)
	// logged and stored count the bytes the run has written to the log
	// and to the store (loop-only), against MaxRunLog and MaxRunStore.
	logged, stored int
	// query is the request of a run whose target is a query module: its
	// JSON body is the result as sent, not as JS numbers (an id past 2^53
	// keeps its digits).
	query *queryCall
	done  bool
	// work takes blocking work (an HTTP request) of this run to its
	// driver goroutine, which would otherwise sit idle waiting: no hop to
	// another goroutine and back. Nil for runs without a caller.
	work chan func()

	gone     chan struct{}      // closed when the caller has left
	limit    time.Duration      // the deadline, as a duration from the call
	cancel   context.CancelFunc // of ctx; nil for internal runs
	mu       sync.Mutex         // guards ended, inflight and sends on work
	ended    bool               // the caller has left
	inflight int                // blocking work using ctx
	writes   sync.WaitGroup     // durable writes not yet on disk
}

// Per-run quotas (DESIGN §17): what one run may write to the log and to
// the store. Past MaxRunLog, its console lines are dropped (one line says
// so); past MaxRunStore, storeValue throws.
const (
	MaxRunLog   = 1 << 20
	MaxRunStore = 10 << 20
)

// logQuota counts n bytes of log for r and reports whether they may be
// written. r nil (the instance's own work) is not counted.
func (r *run) logQuota(n int, log *slog.Logger) bool {
	if r == nil {
		return true
	}
	if r.logged > MaxRunLog {
		return false
	}
	r.logged += n
	if r.logged > MaxRunLog {
		log.WarnContext(r.context(), "this run wrote more than its log quota; its further console lines are dropped", "target", r.target, "quota bytes", MaxRunLog)
		return false
	}
	return true
}

// context is r's context for its log lines: they name the run. r nil
// (the instance's own work) or an internal run has none.
func (r *run) context() context.Context {
	if r == nil || r.ctx == nil {
		return context.Background()
	}
	return r.ctx
}

// storeQuota counts n bytes written to the store by r, and fails past
// MaxRunStore.
func (r *run) storeQuota(n int) error {
	if r == nil {
		return nil
	}
	r.stored += n
	if r.stored > MaxRunStore {
		return fmt.Errorf("the run wrote more than %d MiB to the store, its quota", MaxRunStore>>20)
	}
	return nil
}

// queryBody is the JSON body of a query target's response, compacted.
func (r *run) queryBody() (json.RawMessage, bool) {
	q := r.query
	if q == nil || q.resp == nil || q.resp.Kind != engine.BodyJSON || len(q.resp.Body) == 0 || q.withMeta {
		return nil, false
	}
	var b bytes.Buffer
	if json.Compact(&b, q.resp.Body) != nil {
		return nil, false
	}
	return b.Bytes(), true
}

type result struct {
	val json.RawMessage
	err error
}

func (r *run) finish(val json.RawMessage, err error) {
	if r.done {
		return
	}
	r.done = true
	if r.onDone != nil {
		r.onDone(val, err)
		return
	}
	r.result = result{val, err}
	close(r.settled)
}

// hold counts one piece of blocking work that uses r's context. It
// reports false once r has ended.
func (r *run) hold() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return false
	}
	r.inflight++
	return true
}

// unhold ends one piece of work; the last one after r ended cancels r's
// context.
func (r *run) unhold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight--
	if r.ended && r.inflight == 0 {
		r.cancel()
	}
}

// end is called when r's caller leaves. An abandoned run's context is
// cancelled now, cancelling its requests; a run that returned normally
// keeps its context until the work it started is done, since JS it
// started may still be running for another call (a shared promise) or on
// its own (a request not awaited).
func (r *run) end(abandon bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
	close(r.gone)
	if abandon || r.inflight == 0 {
		r.cancel()
	}
}
