package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/modrun/modrun/store"
)

// TestFlushWaitsForTheLinger: the writer holds runs back for
// historyLinger to commit them together; flush, as at shutdown, returns
// only once every finished run is in the store.
func TestFlushWaitsForTheLinger(t *testing.T) {
	st := store.NewMemory()
	h := newHistory(st, 1000, "test", slog.New(slog.DiscardHandler))
	for range 100 {
		r := &Run{Package: "p", Target: "m.f", Trigger: TriggerAPI, Status: StatusQueued}
		h.add(r, false)
		h.update(r, func(r *Run) { r.Status, r.Result = StatusSucceeded, json.RawMessage(`1`) })
	}
	h.flush()
	all, err := st.List(context.Background(), HistoryApp)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 100 {
		t.Fatalf("%d runs in the store after flush, want 100", len(all))
	}
	for key, raw := range all {
		var r Run
		if err := json.Unmarshal(raw, &r); err != nil || r.Status != StatusSucceeded {
			t.Fatalf("%s = %s (%v), want a succeeded run", key, raw, err)
		}
	}
}
