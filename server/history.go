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
// so that it survives a restart. The store holds max slots, keys
// slot-000000 on, used in turn: a new run overwrites the oldest one's
// slot, so keeping the history bounded costs no deletes. One writer goroutine
// takes the store writes in the background, the newest state of each run
// only, so that a run's states reach the store in order; flush waits for
// it to catch up.
type history struct {
	st  engine.Store
	max int
	log *slog.Logger
	ids runIDs

	mu      sync.Mutex
	runs    map[string]*Run
	order   []string                 // IDs, oldest first
	done    map[string]chan struct{} // closed when a run finishes
	slots   map[string]int           // run ID → its slot
	next    int                      // the slot the next run takes
	pending map[string][]byte        // slot key → run JSON to write; nil: delete
	writing bool                     // the writer is running
	idle    *sync.Cond               // signalled when the writer stops
}

func newHistory(st engine.Store, max int, log *slog.Logger) *history {
	h := &history{st: st, max: max, log: log, runs: map[string]*Run{}, done: map[string]chan struct{}{},
		slots: map[string]int{}, pending: map[string][]byte{}}
	h.idle = sync.NewCond(&h.mu)
	return h
}

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
// crash loses the history of at most this long, beside the runs it cut
// short anyway; flush, at shutdown, waits for it.
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
		for id, raw := range batch {
			var err error
			switch {
			case raw == nil:
				err = h.st.Delete(context.Background(), HistoryApp, id)
			case async != nil:
				waits = append(waits, async.SetAsync(context.Background(), HistoryApp, id, raw))
			default:
				err = h.st.Set(context.Background(), HistoryApp, id, raw)
			}
			if err != nil {
				h.log.Warn("history: writing a run to the store", "id", id, "error", err)
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

// load reads the history the store keeps. Runs a previous server left
// queued or running are failed: that server stopped without finishing
// them.
func (h *history) load(ctx context.Context) error {
	all, err := h.st.List(ctx, HistoryApp)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var runs []*Run
	for key, raw := range all {
		var r Run
		if _, err := slotNumber(key); err != nil || json.Unmarshal(raw, &r) != nil || r.ID == "" {
			h.pending[key] = nil // not a slot of ours
			continue
		}
		runs = append(runs, &r)
		h.slots[r.ID], _ = slotNumber(key)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].ID < runs[j].ID })
	for _, r := range runs {
		if r.Status == StatusQueued || r.Status == StatusRunning {
			now := time.Now()
			r.Status, r.FinishedAt = StatusFailed, &now
			r.Error = &ErrorInfo{Message: "the server stopped before the run finished"}
			h.save(r)
		}
		h.runs[r.ID] = r
		h.order = append(h.order, r.ID)
	}
	if len(runs) > 0 {
		h.next = (h.slots[runs[len(runs)-1].ID] + 1) % h.max
	}
	// A smaller --history than last time: the oldest runs and the slots
	// past max go.
	for len(h.order) > h.max {
		h.forget(h.order[0])
	}
	for id, slot := range h.slots {
		if slot >= h.max {
			h.pending[slotKey(slot)] = nil
			delete(h.slots, id)
		}
	}
	if len(h.pending) > 0 && !h.writing {
		h.writing = true
		go h.writer()
	}
	return nil
}

func slotKey(n int) string { return fmt.Sprintf("slot-%06d", n) }

func slotNumber(key string) (int, error) {
	var n int
	_, err := fmt.Sscanf(key, "slot-%06d", &n)
	return n, err
}

// add records a new run, in the slot of the oldest, and returns the
// channel closed when it finishes. A queued run (async, or a schedule's)
// is written to the store at once; a sync run when it ends.
func (h *history) add(r *Run, async bool) chan struct{} {
	r.ID = h.ids.next()
	r.CreatedAt = time.Now().UTC()
	done := make(chan struct{})
	h.mu.Lock()
	if len(h.order) >= h.max {
		h.forget(h.order[0])
	}
	h.runs[r.ID] = r
	h.order = append(h.order, r.ID)
	h.slots[r.ID] = h.next
	h.next = (h.next + 1) % h.max
	h.done[r.ID] = done
	if r.Trigger != TriggerAPI || async {
		h.save(r) // a queued run the client will ask for later
	}
	h.mu.Unlock()
	return done
}

// forget drops run id from memory; its slot will be overwritten. h.mu is
// held.
func (h *history) forget(id string) {
	h.order = h.order[1:]
	delete(h.runs, id)
	delete(h.slots, id)
}

// update changes r under the lock and saves it; a finished run's waiters
// are released.
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
	if _, kept := h.runs[r.ID]; kept && r.Status != StatusRunning {
		h.save(r)
	}
	h.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// save queues r's store write. h.mu is held.
func (h *history) save(r *Run) {
	raw, err := json.Marshal(r)
	if err != nil {
		h.log.Error("history: encoding a run", "id", r.ID, "error", err)
		return
	}
	if slot, ok := h.slots[r.ID]; ok {
		h.queue(slotKey(slot), raw)
	}
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
// (nil once it has).
func (h *history) get(id string) (Run, chan struct{}, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.runs[id]
	if !ok {
		return Run{}, nil, false
	}
	return *r, h.done[id], true
}

// filter is a GET /v1/runs query.
type filter struct {
	pkg, target, status, before string
	limit                       int
}

// list returns runs matching f, newest first.
func (h *history) list(f filter) []Run {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []Run{}
	for i := len(h.order) - 1; i >= 0 && len(out) < f.limit; i-- {
		r := h.runs[h.order[i]]
		switch {
		case f.before != "" && r.ID >= f.before,
			f.pkg != "" && r.Package != f.pkg,
			f.target != "" && r.Target != f.target,
			f.status != "" && r.Status != f.status:
			continue
		}
		out = append(out, *r)
	}
	return out
}
