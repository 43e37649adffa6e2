package engine_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/store"
)

// mutexLocker is a Locker as one etcd gives every process on it: one
// holder per key at a time.
type mutexLocker struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

func (l *mutexLocker) Lock(ctx context.Context, app, key string) (func(), error) {
	for {
		l.mu.Lock()
		if l.locks == nil {
			l.locks = map[string]chan struct{}{}
		}
		held, ok := l.locks[app+"\x00"+key]
		if !ok {
			ch := make(chan struct{})
			l.locks[app+"\x00"+key] = ch
			l.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					l.mu.Lock()
					delete(l.locks, app+"\x00"+key)
					l.mu.Unlock()
					close(ch)
				})
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TestTakeTurnSharesAPeersResult: two leaders (of two processes) on one
// store: the one that waited for its turn while the other's call ran
// takes that call's result; a later call runs again.
func TestTakeTurnSharesAPeersResult(t *testing.T) {
	ctx := context.Background()
	st, l := store.NewMemory(), &mutexLocker{}
	a, err := engine.TakeTurn(ctx, st, l, "app", "refresh")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, peer := a.Peer(); peer {
		t.Fatal("the first leader found a peer's result")
	}
	got := make(chan *engine.SharedTurn)
	go func() {
		b, err := engine.TakeTurn(ctx, st, l, "app", "refresh")
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case <-got:
		t.Fatal("the second leader took its turn while the first held it")
	case <-time.After(50 * time.Millisecond):
	}
	if err := a.Publish(ctx, json.RawMessage(`{"refreshed":true}`), ""); err != nil {
		t.Fatal(err)
	}
	b := <-got
	val, perr, peer := b.Peer()
	if !peer || perr != nil || string(val) != `{"refreshed":true}` {
		t.Fatalf("second leader: %s, %v, peer %v; want the first's result", val, perr, peer)
	}
	// The turn is over: a new call is a new turn, and runs.
	c, err := engine.TakeTurn(ctx, st, l, "app", "refresh")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, peer := c.Peer(); peer {
		t.Fatal("a call after the last one finished took its result")
	}
	// A failure is shared as well.
	go func() {
		d, err := engine.TakeTurn(ctx, st, l, "app", "refresh")
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	time.Sleep(20 * time.Millisecond)
	c.Publish(ctx, nil, "singleFlight(refresh): refreshAPI: HTTP 503")
	_, perr, peer = (<-got).Peer()
	if !peer || perr == nil || perr.Error() != "singleFlight(refresh): refreshAPI: HTTP 503" {
		t.Fatalf("a peer's failure: %v, peer %v", perr, peer)
	}
}

// TestTakeTurnEndWithoutPublish: a leader that ends its turn without a
// result (its run was abandoned) leaves the work to the next.
func TestTakeTurnEndWithoutPublish(t *testing.T) {
	ctx := context.Background()
	st, l := store.NewMemory(), &mutexLocker{}
	a, err := engine.TakeTurn(ctx, st, l, "app", "k")
	if err != nil {
		t.Fatal(err)
	}
	a.End()
	a.End() // twice is fine
	if err := a.Publish(ctx, json.RawMessage(`1`), ""); err != nil {
		t.Fatal(err)
	}
	b, err := engine.TakeTurn(ctx, st, l, "app", "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, peer := b.Peer(); peer {
		t.Fatal("an ended turn published a result")
	}
	// Apps have their own turns.
	other, err := engine.TakeTurn(ctx, st, l, "other", "k")
	if err != nil {
		t.Fatal(err)
	}
	other.End()
	b.End()
}

// TestTakeTurnHonoursItsContext: a leader waiting for a turn stops at its
// deadline.
func TestTakeTurnHonoursItsContext(t *testing.T) {
	st, l := store.NewMemory(), &mutexLocker{}
	a, err := engine.TakeTurn(context.Background(), st, l, "app", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer a.End()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := engine.TakeTurn(ctx, st, l, "app", "k"); err == nil {
		t.Fatal("took a held turn")
	}
}
