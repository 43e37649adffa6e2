// The history in the store: the background writer, its retries, and reading other servers' runs.

package server

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/modrun/modrun/engine"
)

// startWriter starts the writer unless it runs. h.mu is held.
func (h *history) startWriter() {
	if h.idle == nil && len(h.pending) > 0 {
		h.idle = make(chan struct{})
		go h.writer()
	}
}

// historyLinger is how long the writer lets runs gather before a batch:
// one commit for every run that ends meanwhile, not one for every few.
// (At c=64 the commits cost 10% of a busy server's CPU without it.) A
// crash loses the history of at most this long plus one commit, beside
// the runs it cut short anyway; flush, at shutdown, waits for it.
const historyLinger = 10 * time.Millisecond

// historyFlushTimeout bounds the wait at shutdown for the last run
// states to reach the store.
const historyFlushTimeout = 5 * time.Second

// historyRetry bounds the wait between tries of writes the store
// refused; the first waits historyLinger, each next twice the last.
const historyRetry = 5 * time.Second

// maxPendingDeletes bounds the deletes of trimmed runs kept for another
// try while the store refuses writes: past it they are dropped, and the
// next start trims the store (load).
const maxPendingDeletes = 100_000

// writer writes what is pending until nothing is.
func (h *history) writer() {
	wait, failing := historyLinger, 0
	h.mu.Lock()
	for len(h.pending) > 0 {
		h.mu.Unlock()
		time.Sleep(wait)
		h.mu.Lock()
		batch := h.pending
		h.pending = map[string][]byte{}
		h.mu.Unlock()
		failed, err := h.write(batch)
		h.mu.Lock()
		switch {
		case len(failed) > 0:
			// A newer state queued meanwhile replaces a failed one.
			for key, raw := range failed {
				if _, newer := h.pending[key]; !newer && (raw != nil || len(h.pending) < maxPendingDeletes) {
					h.pending[key] = raw
				}
			}
			if failing == 0 {
				h.log.Warn("history: the store refuses run writes; trying again until it takes them", "runs", len(failed), "error", err)
			}
			failing = len(h.pending)
			wait = min(2*wait, historyRetry)
		case failing > 0:
			h.log.Info("history: the store takes run writes again", "runs", failing)
			failing, wait = 0, historyLinger
		}
	}
	close(h.idle)
	h.idle = nil
	h.mu.Unlock()
}

// write writes batch and returns what the store refused, with one of its
// errors.
func (h *history) write(batch map[string][]byte) (failed map[string][]byte, err error) {
	fail := func(key string, e error) {
		if failed == nil {
			failed = map[string][]byte{}
		}
		failed[key], err = batch[key], e
	}
	// With a store that queues writes (bbolt's group commit), the batch
	// goes in one commit instead of one fsync a run, trimmed runs' deletes
	// included; with another, each is made in turn.
	type waiting struct {
		key  string
		wait func() error
	}
	waits := make([]waiting, 0, len(batch))
	for key, raw := range batch {
		ctx := context.Background()
		if raw == nil {
			waits = append(waits, waiting{key, engine.DeleteAsync(ctx, h.st, HistoryApp, key)})
		} else {
			waits = append(waits, waiting{key, engine.SetAsync(ctx, h.st, HistoryApp, key, raw)})
		}
	}
	for _, w := range waits {
		if e := w.wait(); e != nil {
			fail(w.key, e)
		}
	}
	return failed, err
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
	h.startWriter()
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

// flush waits until every state recorded so far is in the store, or ctx
// ends: then it says how many are not, and the writer goes on trying.
func (h *history) flush(ctx context.Context) {
	h.mu.Lock()
	idle := h.idle
	h.mu.Unlock()
	if idle == nil {
		return
	}
	select {
	case <-idle:
	case <-ctx.Done():
		h.mu.Lock()
		n := len(h.pending)
		h.mu.Unlock()
		h.log.Warn("history: the store did not take the last run states in time", "runs", n)
	}
}
