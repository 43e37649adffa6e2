package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/store"
)

// TestFlushWaitsForTheLinger: the writer holds runs back for
// historyLinger to commit them together; flush, as at shutdown, returns
// only once every finished run is in the store.
func TestFlushWaitsForTheLinger(t *testing.T) {
	st := store.NewMemory()
	h := newHistory(st, 1000, "test", slog.New(slog.DiscardHandler))
	addSucceeded(h, 100)
	h.flush(context.Background())
	storedSucceeded(t, st, 100, "after flush")
}

// addSucceeded adds n runs to h, each succeeded.
func addSucceeded(h *history, n int) {
	for range n {
		r := &Run{Package: "p", Target: "m.f", Trigger: TriggerAPI, Status: StatusQueued}
		h.add(r, false)
		h.update(r, func(r *Run) { r.Status, r.Result = StatusSucceeded, json.RawMessage(`1`) })
	}
}

// storedSucceeded checks that the store's history holds n runs, each
// succeeded.
func storedSucceeded(t *testing.T, st engine.Store, n int, when string) {
	t.Helper()
	all, err := st.List(context.Background(), HistoryApp)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("%d runs in the store %s, want %d", len(all), when, n)
	}
	for key, raw := range all {
		var r Run
		if err := json.Unmarshal(raw, &r); err != nil || r.Status != StatusSucceeded {
			t.Errorf("%s = %s (%v), want a succeeded run", key, raw, err)
		}
	}
}

// outage is a store that refuses writes while down, as an etcd store does
// while this server is cut off from its cluster.
type outage struct {
	engine.Store
	down    atomic.Bool
	refused atomic.Int64
}

var errUnreachable = errors.New("etcd: context deadline exceeded")

func (o *outage) Set(ctx context.Context, app, key string, v json.RawMessage) error {
	if o.down.Load() {
		o.refused.Add(1)
		return errUnreachable
	}
	return o.Store.Set(ctx, app, key, v)
}

func (o *outage) Delete(ctx context.Context, app, key string) error {
	if o.down.Load() {
		o.refused.Add(1)
		return errUnreachable
	}
	return o.Store.Delete(ctx, app, key)
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30 s", what)
		}
	}
}

// TestRefusedWritesAreTriedAgain: a run that ends while the store refuses
// writes reaches the store once it takes them again, in its final state;
// the outage is logged once, and its end.
func TestRefusedWritesAreTriedAgain(t *testing.T) {
	st := &outage{Store: store.NewMemory()}
	var logs bytes.Buffer
	h := newHistory(st, 1000, "a", slog.New(slog.NewTextHandler(&logs, nil)))
	st.down.Store(true)
	var runs []*Run
	for range 3 {
		r := &Run{Package: "p", Target: "m.f", Trigger: TriggerAPI, Status: StatusQueued}
		h.add(r, true)
		runs = append(runs, r)
	}
	waitFor(t, "the queued states refused", func() bool { return st.refused.Load() >= 3 })
	for _, r := range runs {
		h.update(r, func(r *Run) { r.Status, r.Result = StatusSucceeded, json.RawMessage(`1`) })
	}
	waitFor(t, "the final states refused", func() bool { return st.refused.Load() >= 6 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	h.flush(ctx) // gives up, as at shutdown
	cancel()
	st.down.Store(false)
	h.flush(context.Background())
	storedSucceeded(t, st, 3, "after the outage")
	out := logs.String()
	for _, want := range []string{"the store refuses run writes", "did not take the last run states in time", "the store takes run writes again"} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("the log says %q %d times, want once:\n%s", want, n, out)
		}
	}
}

// TestSyncRunWritesOnlyItsEnd: a sync run's caller waits for its answer,
// so the store gets the run once, when it ends; an async run's queued
// state is stored at once (a restart must fail it).
func TestSyncRunWritesOnlyItsEnd(t *testing.T) {
	st := store.NewMemory()
	h := newHistory(st, 1000, "a", slog.New(slog.DiscardHandler))
	sync := &Run{Package: "p", Target: "m.f", Trigger: TriggerAPI, Status: StatusQueued}
	async := &Run{Package: "p", Target: "m.f", Trigger: TriggerAPI, Status: StatusQueued}
	h.add(sync, false)
	h.add(async, true)
	for _, r := range []*Run{sync, async} {
		h.update(r, func(r *Run) { r.Args = json.RawMessage(`[1]`) })
		h.update(r, func(r *Run) { r.Status = StatusRunning })
	}
	h.flush(context.Background())
	all, _ := st.List(context.Background(), HistoryApp)
	if _, ok := all[runKey(sync.ID)]; ok {
		t.Errorf("a sync run's unfinished state is in the store: %s", all[runKey(sync.ID)])
	}
	var r Run
	if json.Unmarshal(all[runKey(async.ID)], &r); r.Status != StatusQueued || string(r.Args) != `[1]` {
		t.Errorf("the async run in the store is %s, want queued with its args", all[runKey(async.ID)])
	}
	h.update(sync, func(r *Run) { r.Status = StatusSucceeded })
	h.flush(context.Background())
	all, _ = st.List(context.Background(), HistoryApp)
	if json.Unmarshal(all[runKey(sync.ID)], &r); r.Status != StatusSucceeded {
		t.Errorf("the sync run in the store is %s, want succeeded", all[runKey(sync.ID)])
	}
}

// TestAnotherServersRunIsReadAgain: a server that saw another server's run
// queued reads it again when asked for it, and so sees it finish.
func TestAnotherServersRunIsReadAgain(t *testing.T) {
	st := store.NewMemory()
	a := newHistory(st, 1000, "a", slog.New(slog.DiscardHandler))
	b := newHistory(st, 1000, "b", slog.New(slog.DiscardHandler))
	r := &Run{Package: "p", Target: "m.f", Trigger: TriggerAPI, Status: StatusQueued}
	a.add(r, true)
	a.flush(context.Background())
	if got, _, ok := b.get(context.Background(), r.ID); !ok || got.Status != StatusQueued {
		t.Fatalf("b sees %+v (%v), want the queued run", got, ok)
	}
	a.update(r, func(r *Run) { r.Status = StatusSucceeded })
	a.flush(context.Background())
	waitFor(t, "b seeing the run finish", func() bool {
		got, _, _ := b.get(context.Background(), r.ID)
		return got.Status == StatusSucceeded
	})
}

// queuing is a real bbolt store that counts the deletes made one at a
// time (each waiting for its own commit and fsync).
type queuing struct {
	*store.DB
	syncDeletes atomic.Int64
}

func (q *queuing) Delete(ctx context.Context, app, key string) error {
	q.syncDeletes.Add(1)
	return q.DB.Delete(ctx, app, key)
}

// TestTrimmedRunsShareTheBatchCommit: the deletes of runs trimmed from
// the history are queued with the batch's writes, one group commit for
// all, never one commit each (issue 33: at 6,500 runs/s the trimming
// made 2,000 fsyncs a second and took a fifth of the server's CPU).
func TestTrimmedRunsShareTheBatchCommit(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := &queuing{DB: db}
	h := newHistory(st, 10, "test", slog.New(slog.DiscardHandler))
	addSucceeded(h, 100)
	h.flush(context.Background())
	storedSucceeded(t, st, 10, "after flush")
	if n := st.syncDeletes.Load(); n != 0 {
		t.Fatalf("the history trimmed %d runs one delete (and one commit) at a time", n)
	}
}

// TestRunIDs: IDs are "r", the time in µs (13 hex digits), a counter (4),
// and the process's tag, each zero-padded; they sort by creation.
func TestRunIDs(t *testing.T) {
	g := runIDs{tag: "a1b2c3"}
	prev := ""
	for range 1000 {
		id := g.next()
		if want := fmt.Sprintf("r%013x%04x%s", g.last, g.n&0xffff, g.tag); id != want {
			t.Fatalf("id %q, want %q", id, want)
		}
		if id <= prev {
			t.Fatalf("%q after %q: not in creation order", id, prev)
		}
		prev = id
	}
	for _, c := range []struct {
		v     uint64
		width int
		want  string
	}{{0, 4, "0000"}, {0xabc, 4, "0abc"}, {0x12345, 4, "12345"}, {1 << 52, 13, "10000000000000"}} {
		if got := string(appendHex(nil, c.v, c.width)); got != c.want {
			t.Errorf("appendHex(%#x, %d) = %q, want %q", c.v, c.width, got, c.want)
		}
	}
}
