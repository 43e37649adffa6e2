package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
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
// in order; flush waits for it to catch up. Runs of other servers are
// read from the store at start and, at most once per historySync, when
// the history is listed.
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
	writing bool                     // the writer is running
	idle    *sync.Cond               // signalled when the writer stops
	synced  time.Time                // when the store was last read for other servers' runs
	syncing bool
}

func newHistory(st engine.Store, max int, server string, log *slog.Logger) *history {
	h := &history{st: st, max: max, server: server, log: log, runs: map[string]*Run{}, done: map[string]chan struct{}{},
		pending: map[string][]byte{}, ids: newRunIDs()}
	h.idle = sync.NewCond(&h.mu)
	return h
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
	if !h.writing {
		h.writing = true
		go h.writer()
	}
}

// historyLinger is how long the writer lets runs gather before a batch:
// one commit for every run that ends meanwhile, not one for every few.
// (At c=64 the commits cost 10% of a busy server's CPU without it.) A
// crash loses the history of at most this long plus one commit, beside
// the runs it cut short anyway; flush, at shutdown, waits for it.
const historyLinger = 10 * time.Millisecond

// writer writes what is pending until nothing is.
func (h *history) writer() {
	h.mu.Lock()
	for len(h.pending) > 0 {
		h.mu.Unlock()
		time.Sleep(historyLinger)
		h.mu.Lock()
		batch := h.pending
		h.pending = map[string][]byte{}
		h.mu.Unlock()
		// With a store that queues writes (bbolt's group commit), the
		// batch goes in one commit instead of one fsync a run.
		async, _ := h.st.(engine.AsyncSetter)
		var waits []func() error
		for key, raw := range batch {
			var err error
			switch {
			case raw == nil:
				err = h.st.Delete(context.Background(), HistoryApp, key)
			case async != nil:
				waits = append(waits, async.SetAsync(context.Background(), HistoryApp, key, raw))
			default:
				err = h.st.Set(context.Background(), HistoryApp, key, raw)
			}
			if err != nil {
				h.log.Warn("history: writing a run to the store", "key", key, "error", err)
			}
		}
		for _, wait := range waits {
			if err := wait(); err != nil {
				h.log.Warn("history: writing a run to the store", "error", err)
			}
		}
		h.mu.Lock()
	}
	h.writing = false
	h.idle.Broadcast()
	h.mu.Unlock()
}

// load reads the history the store keeps. Runs this server (by its name)
// left queued or running are failed: it stopped without finishing them.
// Entries of the slot layout of earlier versions move to run keys.
func (h *history) load(ctx context.Context) error {
	all, err := h.st.List(ctx, HistoryApp)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, raw := range all {
		r, ok := parseEntry(key, raw)
		if !ok {
			h.pending[key] = nil // not a run of ours
			continue
		}
		if key != runKey(r.ID) { // an earlier version's slot
			h.pending[key] = nil
			h.pending[runKey(r.ID)] = raw
		}
		if (r.Status == StatusQueued || r.Status == StatusRunning) && (r.Server == h.server || r.Server == "") {
			now := time.Now().UTC()
			r.Status, r.FinishedAt = StatusFailed, &now
			r.Error = &ErrorInfo{Message: "the server stopped before the run finished"}
			h.saveLocked(r)
		}
		h.insert(r)
	}
	h.trim()
	h.synced = time.Now()
	if len(h.pending) > 0 && !h.writing {
		h.writing = true
		go h.writer()
	}
	return nil
}

// parseEntry reads one history entry of the store: a run key, or a slot
// key of an earlier version.
func parseEntry(key string, raw []byte) (*Run, bool) {
	if !strings.HasPrefix(key, "run-") && !strings.HasPrefix(key, "slot-") {
		return nil, false
	}
	var r Run
	if json.Unmarshal(raw, &r) != nil || r.ID == "" {
		return nil, false
	}
	if strings.HasPrefix(key, "run-") && key != runKey(r.ID) {
		return nil, false
	}
	return &r, true
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

// sync reads the runs other servers on the store added or finished since
// the last read, at most once per historySync.
func (h *history) sync(ctx context.Context) {
	h.mu.Lock()
	if h.syncing || time.Since(h.synced) < historySync {
		h.mu.Unlock()
		return
	}
	h.syncing = true
	h.mu.Unlock()
	all, err := h.st.List(ctx, HistoryApp)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.syncing, h.synced = false, time.Now()
	if err != nil {
		h.log.Warn("history: reading other servers' runs", "error", err)
		return
	}
	oldest := ""
	if len(h.order) >= h.max {
		oldest = h.order[0]
	}
	for key, raw := range all {
		r, ok := parseEntry(key, raw)
		if !ok || r.Server == h.server || r.ID < oldest {
			continue
		}
		if _, pending := h.pending[key]; pending {
			continue // ours to write or delete
		}
		h.insert(r)
	}
	h.trim()
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
	finished := r.Status == StatusSucceeded || r.Status == StatusFailed
	var done chan struct{}
	if finished {
		done = h.done[r.ID]
		delete(h.done, r.ID)
	}
	// A run's start is kept in memory only: the store gets its queued
	// state (a queued run must survive a restart as failed) and its end,
	// one write less per run.
	if kept, ok := h.runs[r.ID]; ok && kept == r && r.Status != StatusRunning {
		h.saveLocked(r)
	}
	h.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// saveLocked queues r's store write. h.mu is held.
func (h *history) saveLocked(r *Run) {
	raw, err := json.Marshal(r)
	if err != nil {
		h.log.Error("history: encoding a run", "id", r.ID, "error", err)
		return
	}
	h.queue(runKey(r.ID), raw)
}

// flush waits until every state recorded so far is in the store.
func (h *history) flush() {
	h.mu.Lock()
	for h.writing {
		h.idle.Wait()
	}
	h.mu.Unlock()
}

// get returns a copy of run id, and the channel closed when it finishes
// (nil once it has, or for another server's run).
func (h *history) get(ctx context.Context, id string) (Run, chan struct{}, bool) {
	h.mu.Lock()
	r, ok := h.runs[id]
	if !ok {
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
