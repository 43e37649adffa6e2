// Group commit: writes queued, committed together in one fsync'd bbolt transaction.

package store

import (
	"context"
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"

	"github.com/modrun/modrun/engine"
)

type write struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// commitLoop is the group commit: it takes every queued write, applies them
// in one transaction and syncs once.
func (db *DB) commitLoop() {
	defer close(db.done)
	group := make([]*write, 0, db.maxGroup)
	for w := range db.writes {
		group = append(group[:0], w)
	fill:
		for len(group) < db.maxGroup {
			select {
			case w, ok := <-db.writes:
				if !ok {
					break fill
				}
				group = append(group, w)
			default:
				break fill
			}
		}
		db.commit(group)
	}
}

func (db *DB) commit(group []*write) {
	err := db.update(func(tx *bolt.Tx) error {
		for _, w := range group {
			if err := w.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, w := range group {
			w.err <- err
		}
		return
	}
	// One write failed and took the group's transaction down with it: retry
	// each on its own so that only the failing one reports the error.
	for _, w := range group {
		w.err <- db.update(w.fn)
	}
}

// update runs fn in a read-write transaction, turning a bbolt panic on a
// damaged file into an error.
func (db *DB) update(fn func(*bolt.Tx) error) (err error) {
	if err := db.brokenErr(); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store %s: %w (%v): the file changed under the store (truncated or overwritten?); restart with a good copy", db.path, engine.ErrCorrupt, r)
			// bbolt rolls back from a deferred function; a fault there
			// skips the unlock. Never enter bbolt again.
			db.broken.CompareAndSwap(nil, &err)
		}
	}()
	return db.bolt.Update(fn)
}

func (db *DB) brokenErr() error {
	if e := db.broken.Load(); e != nil {
		return *e
	}
	return nil
}

func (db *DB) view(fn func(*bolt.Tx) error) (err error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return engine.ErrClosed
	}
	if err := db.brokenErr(); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store %s: %w (%v)", db.path, engine.ErrCorrupt, r)
		}
	}()
	return db.bolt.View(fn)
}

// write queues fn for the next group commit and waits until it is durable.
func (db *DB) write(ctx context.Context, fn func(*bolt.Tx) error) error {
	return db.enqueue(ctx, fn)()
}

// enqueue queues fn for the next group commit and returns the function
// that waits until it is durable. Writes commit in the order queued.
func (db *DB) enqueue(ctx context.Context, fn func(*bolt.Tx) error) (wait func() error) {
	w := &write{fn: fn, err: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return func() error { return engine.ErrClosed }
	}
	select {
	case db.writes <- w:
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err
	}
	db.mu.RUnlock()
	// Once queued, the write will be committed; wait for it even if ctx
	// ends, so that a returned error never hides a write that happened.
	return func() error { return <-w.err }
}
