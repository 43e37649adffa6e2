// The server's store, locks, flights, observer and log, seen from a
// worker: each a request over the pipe.

package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/modrun/modrun/engine"
)

// remoteStore is the parent's store, seen from a worker.
type remoteStore struct{ s *workerSide }

var (
	_ engine.Store       = (*remoteStore)(nil)
	_ engine.AsyncSetter = (*remoteStore)(nil)
	_ engine.Locker      = (*remoteLocker)(nil)
)

// remoteLocker is the parent's store when it locks across processes.
type remoteLocker struct {
	remoteStore
	ttl time.Duration // the lease of the parent's locks; 0: not known
}

// LockTTL implements engine.Leased.
func (r *remoteLocker) LockTTL() time.Duration { return r.ttl }

func (r *remoteStore) do(ctx context.Context, op *storeFrame) (*answer, error) {
	return r.s.rpc(ctx, &message{Op: opStore, Store: op})
}

func (r *remoteStore) Get(ctx context.Context, app, key string) (json.RawMessage, error) {
	a, err := r.do(ctx, &storeFrame{Op: "get", App: app, Key: key})
	if err != nil {
		return nil, err
	}
	return a.Value, nil
}

func (r *remoteStore) Set(ctx context.Context, app, key string, v json.RawMessage) error {
	_, err := r.do(ctx, &storeFrame{Op: "set", App: app, Key: key, Value: v})
	return err
}

// SetAsync sends the write at once (writes reach the parent in order) and
// waits for the parent's answer, which comes once the write is durable.
func (r *remoteStore) SetAsync(ctx context.Context, app, key string, v json.RawMessage) func() error {
	done := make(chan error, 1)
	m := &message{Op: opStore, Store: &storeFrame{Op: "set", App: app, Key: key, Value: v}, ID: r.s.ids.Add(1)}
	ch := make(chan *message, 1)
	r.s.mu.Lock()
	r.s.pending[m.ID] = ch
	r.s.mu.Unlock()
	if err := r.s.c.send(m); err != nil {
		return engine.Waited(err)
	}
	go func() { done <- fromWire((<-ch).answered().Err) }()
	return func() error { return <-done }
}

func (r *remoteStore) Delete(ctx context.Context, app, key string) error {
	_, err := r.do(ctx, &storeFrame{Op: "delete", App: app, Key: key})
	return err
}

func (r *remoteStore) List(ctx context.Context, app string) (map[string]json.RawMessage, error) {
	a, err := r.do(ctx, &storeFrame{Op: "list", App: app})
	if err != nil {
		return nil, err
	}
	if a.Values == nil {
		a.Values = map[string]json.RawMessage{}
	}
	return a.Values, nil
}

func (r *remoteStore) Clear(ctx context.Context, app string) error {
	_, err := r.do(ctx, &storeFrame{Op: "clear", App: app})
	return err
}

func (r *remoteStore) CompareAndSwap(ctx context.Context, app, key string, old, new json.RawMessage) (bool, error) {
	a, err := r.do(ctx, &storeFrame{Op: "cas", App: app, Key: key, Old: old, Value: new})
	if err != nil {
		return false, err
	}
	return a.OK, nil
}

// Lock takes the parent store's lock (an etcd store's, across servers;
// a no-op on one without). The parent holds it for this worker, and lets
// it go if the worker dies.
func (r *remoteLocker) Lock(ctx context.Context, app, key string) (func(), error) {
	id := r.s.ids.Add(1)
	release := func() {
		r.s.c.send(&message{Op: opStore, Store: &storeFrame{Op: "unlock"}, Inst: id})
	}
	_, err := r.s.rpc(ctx, &message{ID: id, Op: opStore, Store: &storeFrame{Op: "lock", App: app, Key: key}})
	if err != nil {
		release() // the parent may take it after we stopped waiting
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(release) }, nil
}

func (r *remoteStore) Close() error { return nil }

// remoteFlights is the server's singleFlight, seen from a worker: one
// refresh for every worker.
type remoteFlights struct{ s *workerSide }

func (f *remoteFlights) Join(key string) (engine.FlightJoin, bool) {
	j := &remoteJoin{s: f.s, key: key, res: make(chan *message, 1), id: f.s.ids.Add(1)}
	f.s.mu.Lock()
	f.s.follow[j.id] = j.res // a follower's result comes under the join's ID
	f.s.mu.Unlock()
	a, err := f.s.rpc(context.Background(), &message{Op: opFlightJoin, Flight: key, Inst: j.id})
	if err != nil || a.OK {
		// A leader (or, with the parent gone, alone): no result to wait for.
		f.s.mu.Lock()
		delete(f.s.follow, j.id)
		f.s.mu.Unlock()
		return j, true
	}
	return j, false
}

type remoteJoin struct {
	s   *workerSide
	key string
	id  uint64
	res chan *message
}

func (j *remoteJoin) Finish(val json.RawMessage, err error) {
	j.s.c.send(&message{Op: opFlightFinish, Flight: j.key, Inst: j.id, Answer: &answer{Result: val, Err: toWire(err, plain)}})
}

func (j *remoteJoin) Wait(ctx context.Context) (json.RawMessage, error) {
	select {
	case m := <-j.res:
		a := m.answered()
		return a.Result, fromWire(a.Err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// observer sends an instance's query and token request outcomes to the
// parent, posted: they go with the call's answer.
type observer struct {
	s    *workerSide
	inst uint64
}

func (o *observer) Query(module string, status int) {
	o.s.c.post(&message{Op: opQuery, Inst: o.inst, Query: &queryFrame{Module: module, Status: status}})
}

// TokenRequest forwards an OAuth2 token request's outcome.
func (o *observer) TokenRequest(cred, grant, outcome string) {
	o.s.c.post(&message{Op: opToken, Inst: o.inst, Token: &tokenFrame{Credential: cred, Grant: grant, Outcome: outcome}})
}

// logHandler sends records to the parent.
type logHandler struct {
	s     *workerSide
	level slog.Level
	attrs []slog.Attr
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]string{}
	for _, a := range h.attrs {
		attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	return h.s.c.send(&message{Op: opLog, Log: &logFrame{Level: int(r.Level), Msg: r.Message, Attrs: attrs}})
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{s: h.s, level: h.level, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }
