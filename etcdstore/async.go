package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/modrun/modrun/engine"
)

// maxBatch is the most keys one group commit writes: etcd refuses a
// transaction of more than 128 operations by default (--max-txn-ops).
const maxBatch = 128

// maxBatchBytes bounds the keys and values of one group commit; a single
// write larger than it (a value near the 1 MiB limit) goes alone.
const maxBatchBytes = 1 << 20

// queued is one write of SetAsync (or delete of DeleteAsync) waiting
// for its group commit.
type queued struct {
	key   string // the etcd key
	op    clientv3.Op
	size  int       // of key and value
	until time.Time // its caller's deadline: a batch gives up once all its callers have
	done  chan error
}

var _ engine.AsyncSetter = (*Store)(nil)

// SetAsync implements engine.AsyncSetter: the write is queued in order and
// committed with the writes queued alongside it in one transaction (a
// group commit), so that concurrent storeValue calls cost one etcd round
// trip per batch rather than each. wait returns once etcd has committed
// it, or when ctx ends. A write to a key under this store's lock is
// fenced, and made at once.
func (s *Store) SetAsync(ctx context.Context, app, key string, value json.RawMessage) (wait func() error) {
	if err := checkAppKey(app, key); err != nil {
		return engine.Waited(err)
	}
	v, err := engine.CanonicalValue(value, s.maxValue)
	if err != nil {
		return engine.Waited(fmt.Errorf("set %s: %w", engine.QuoteKey(key), err))
	}
	if s.fence(app, key) != nil {
		return engine.Waited(s.Set(ctx, app, key, v))
	}
	k := s.appRange(app) + key
	return s.enqueue(ctx, k, clientv3.OpPut(k, string(v)), len(k)+len(v))
}

var _ engine.AsyncDeleter = (*Store)(nil)

// DeleteAsync implements engine.AsyncDeleter: the delete is queued in
// order with SetAsync's writes and committed in their batch (the history
// trims old runs so, in the transaction that adds new ones). A delete of
// a key under this store's lock is fenced, and made at once.
func (s *Store) DeleteAsync(ctx context.Context, app, key string) (wait func() error) {
	if err := checkAppKey(app, key); err != nil {
		return engine.Waited(err)
	}
	if s.fence(app, key) != nil {
		return engine.Waited(s.Delete(ctx, app, key))
	}
	k := s.appRange(app) + key
	return s.enqueue(ctx, k, clientv3.OpDelete(k), len(k))
}

// enqueue queues op on etcd key k (size bytes of key and value) for the
// next group commit, and returns the wait for it.
func (s *Store) enqueue(ctx context.Context, k string, op clientv3.Op, size int) (wait func() error) {
	until, ok := ctx.Deadline()
	if !ok {
		until = time.Now().Add(opTimeout)
	}
	w := &queued{key: k, op: op, size: size, until: until, done: make(chan error, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return engine.Waited(s.ready())
	}
	if s.queue == nil {
		s.queue = make(chan *queued, 4*maxBatch)
		s.flushed = make(chan struct{})
		go s.commitLoop(s.queue, s.flushed)
	}
	s.queue <- w // under mu: Close cannot close the queue meanwhile
	s.mu.Unlock()
	return func() error {
		select {
		case err := <-w.done:
			return err
		case <-ctx.Done():
			return s.fail(ctx.Err())
		}
	}
}

// commitLoop commits queued writes in batches, in order, until the queue
// is closed and drained. A batch stays under maxBatchBytes, so that it
// fits etcd's request limit (1.5 MiB by default) whatever the values.
func (s *Store) commitLoop(queue <-chan *queued, flushed chan<- struct{}) {
	defer close(flushed)
	var carry *queued // taken from the queue, but for the next batch
	for {
		w := carry
		carry = nil
		if w == nil {
			var ok bool
			if w, ok = <-queue; !ok {
				return
			}
		}
		batch := []*queued{w}
		keys := map[string]int{w.key: 0} // etcd refuses a key twice in one transaction
		ops := []clientv3.Op{w.op}
		size, until := w.size, w.until
	fill:
		for len(ops) < maxBatch {
			select {
			case w, ok := <-queue:
				if !ok {
					break fill
				}
				if size+w.size > maxBatchBytes {
					carry = w
					break fill
				}
				size += w.size
				if w.until.After(until) {
					until = w.until
				}
				batch = append(batch, w)
				if i, dup := keys[w.key]; dup {
					ops[i] = w.op // the later write wins, as it would in order
				} else {
					keys[w.key] = len(ops)
					ops = append(ops, w.op)
				}
			default:
				break fill
			}
		}
		// A cluster that does not answer holds up the queue only as long
		// as someone waits for the batch.
		ctx, cancel := context.WithDeadline(context.Background(), until)
		_, err := s.cli.Txn(ctx).Then(ops...).Commit()
		cancel()
		err = s.fail(err)
		for _, w := range batch {
			w.done <- err
		}
	}
}
