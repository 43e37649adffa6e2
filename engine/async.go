// Queued writes and deletes: the optional abilities of a store that
// commits in groups, and the calls that use them where a store has them.

package engine

import (
	"context"
	"encoding/json"
)

// AsyncSetter is a Store that can queue a write and wait for its
// durability later. Writes queued by one goroutine commit in that order. A
// Session uses it so that storeValue does not hold an instance's loop
// while the disk syncs, letting one instance's runs share group commits.
type AsyncSetter interface {
	// SetAsync queues the write before it returns; wait blocks until the
	// write is durable and returns its error.
	SetAsync(ctx context.Context, app, key string, value json.RawMessage) (wait func() error)
}

// AsyncDeleter is a Store that can queue a delete as an AsyncSetter
// queues a write. The server's history trims old runs with it, in the
// commit that adds new ones: one delete at a time, each waiting for its
// own commit, took two thousand fsyncs a second at 6,500 runs/s.
type AsyncDeleter interface {
	// DeleteAsync queues the delete before it returns; wait blocks until
	// it is durable and returns its error.
	DeleteAsync(ctx context.Context, app, key string) (wait func() error)
}

// SetAsync queues a write on st if it is an AsyncSetter, and otherwise
// makes it now; wait returns when it is durable, with its error.
func SetAsync(ctx context.Context, st Store, app, key string, value json.RawMessage) (wait func() error) {
	if as, ok := st.(AsyncSetter); ok {
		return as.SetAsync(ctx, app, key, value)
	}
	return Waited(st.Set(ctx, app, key, value))
}

// DeleteAsync queues a delete on st if it is an AsyncDeleter, and
// otherwise makes it now; wait returns when it is durable, with its
// error.
func DeleteAsync(ctx context.Context, st Store, app, key string) (wait func() error) {
	if ad, ok := st.(AsyncDeleter); ok {
		return ad.DeleteAsync(ctx, app, key)
	}
	return Waited(st.Delete(ctx, app, key))
}

// Waited returns a wait that reports err at once: what an asynchronous
// write answers when it was refused, or made before it returned.
func Waited(err error) (wait func() error) { return func() error { return err } }
