package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/modrun/modrun/engine"
)

// history is the last runs, in memory and in the store (app HistoryApp),
// so that it survives a restart and is shared by every server on one
// store. Each run has a key of its own, "run-" and its ID (IDs are unique
// across servers and sort by creation), written by the server that made
// the run and by no other, so servers sharing a store never overwrite
// each other's runs. Keeping the history bounded deletes the oldest keys.
//
// One writer goroutine takes the store writes in the background, the
// newest state of each run only, so that a run's states reach the store
// in order; flush waits for it to catch up. A write the store refuses
// (etcd out of reach) is tried again, with backoff, until it lands or a
// newer state of the run replaces it: a run answered while the store was
// away is in the history once it is back. Runs of other servers are read
// from the store at start and, at most once per historySync, when the
// history is listed or an unfinished one is asked for.
type history struct {
	st     engine.Store
	max    int
	log    *slog.Logger
	ids    runIDs
	server string // this server's name: its unfinished runs are failed when it starts again

	mu      sync.Mutex
	runs    map[string]*Run
	order   []string                 // IDs, oldest first
	done    map[string]chan struct{} // closed when a run finishes
	pending map[string][]byte        // store key → run JSON to write; nil: delete
	early   map[string]bool          // unfinished runs whose queued state is in the store
	idle    chan struct{}            // non-nil while the writer runs; closed when it stops
	synced  time.Time                // when the store was last read for other servers' runs
	syncing bool
}

func newHistory(st engine.Store, max int, server string, log *slog.Logger) *history {
	return &history{st: st, max: max, server: server, log: log, runs: map[string]*Run{}, done: map[string]chan struct{}{},
		pending: map[string][]byte{}, early: map[string]bool{}, ids: newRunIDs()}
}

// MaxHistoryResult is the most bytes of a run's result the history keeps:
// a larger result is answered in full to the caller that waited for it,
// and kept as null with a note (Run.ResultTruncated).
const MaxHistoryResult = 64 << 10

// historySync is how often listing the history reads the store again for
// the runs of other servers sharing it.
const historySync = time.Second

func runKey(id string) string { return "run-" + id }

// queue schedules a store write of key (raw nil: a delete). h.mu is held.
func (h *history) queue(key string, raw []byte) {
	h.pending[key] = raw
	h.startWriter()
}

// insert puts r in the history in ID order. h.mu is held.
func (h *history) insert(r *Run) {
	if _, ok := h.runs[r.ID]; ok {
		h.runs[r.ID] = r
		return
	}
	h.runs[r.ID] = r
	i := sort.SearchStrings(h.order, r.ID)
	h.order = append(h.order, "")
	copy(h.order[i+1:], h.order[i:])
	h.order[i] = r.ID
}

// trim drops the oldest runs past max, from memory and the store. h.mu is
// held.
func (h *history) trim() {
	for len(h.order) > h.max {
		id := h.order[0]
		h.order = h.order[1:]
		delete(h.runs, id)
		h.queue(runKey(id), nil)
	}
}

// add records a new run and returns the channel closed when it finishes.
// A queued run (async, or a schedule's) is written to the store at once;
// a sync run when it ends.
func (h *history) add(r *Run, async bool) chan struct{} {
	r.ID = h.ids.next()
	r.Server = h.server
	r.CreatedAt = time.Now().UTC()
	done := make(chan struct{})
	h.mu.Lock()
	h.insert(r)
	h.trim()
	h.done[r.ID] = done
	if r.Trigger != TriggerAPI || async {
		h.saveLocked(r) // a queued run the client will ask for later
		h.early[r.ID] = true
	}
	h.mu.Unlock()
	return done
}

// update changes r under the lock and saves it; a finished run's waiters
// are released. A run that newer runs pushed out of the history meanwhile
// is changed (its caller still answers with it) but not saved.
func (h *history) update(r *Run, change func(*Run)) {
	h.mu.Lock()
	change(r)
	finished := r.finished()
	var done chan struct{}
	if finished {
		done = h.done[r.ID]
		delete(h.done, r.ID)
	}
	// A run's start is kept in memory only: the store gets its end, and
	// the queued state of a run that a caller will ask for later (it
	// must survive a restart, as failed), one write less per run.
	if kept, ok := h.runs[r.ID]; ok && kept == r && r.Status != StatusRunning && (finished || h.early[r.ID]) {
		h.saveLocked(r)
	}
	if finished {
		delete(h.early, r.ID)
	}
	h.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// finished says whether r has ended.
func (r *Run) finished() bool { return r.Status == StatusSucceeded || r.Status == StatusFailed }

// saveLocked queues r's store write. h.mu is held.
func (h *history) saveLocked(r *Run) {
	raw, err := json.Marshal(r)
	if err != nil {
		h.log.Error("history: encoding a run", "id", r.ID, "error", err)
		return
	}
	h.queue(runKey(r.ID), raw)
}

// get returns a copy of run id, and the channel closed when it finishes
// (nil once it has, or for another server's run). Another server's run
// not known here, or not known to have finished, is read again from the
// store (at most once per historySync).
func (h *history) get(ctx context.Context, id string) (Run, chan struct{}, bool) {
	h.mu.Lock()
	r, ok := h.runs[id]
	if !ok || r.Server != h.server && !r.finished() {
		h.mu.Unlock()
		h.sync(ctx) // another server's, perhaps
		h.mu.Lock()
		r, ok = h.runs[id]
	}
	defer h.mu.Unlock()
	if !ok {
		return Run{}, nil, false
	}
	return *r, h.done[id], true
}

// filter is a GET /v1/runs query.
type filter struct {
	pkg, target, status, before string
	limit                       int
	allowed                     func(pkg string) bool // nil: every package
}

// list returns runs matching f, newest first, this server's and those of
// every other server on the store.
func (h *history) list(ctx context.Context, f filter) []Run {
	h.sync(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []Run{}
	for i := len(h.order) - 1; i >= 0 && len(out) < f.limit; i-- {
		r := h.runs[h.order[i]]
		switch {
		case f.before != "" && r.ID >= f.before,
			f.pkg != "" && r.Package != f.pkg,
			f.target != "" && r.Target != f.target,
			f.status != "" && r.Status != f.status,
			f.allowed != nil && !f.allowed(r.Package):
			continue
		}
		out = append(out, *r)
	}
	return out
}

// truncateResult keeps r's result in the history only up to
// MaxHistoryResult bytes.
func truncateResult(r *Run) {
	if len(r.Result) > MaxHistoryResult {
		r.ResultTruncated = fmt.Sprintf("the result was %d bytes; the history keeps results of up to %d", len(r.Result), MaxHistoryResult)
		r.Result = nil
	}
}
