package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
)

// Flights is what singleFlight needs: Join a call for key, as its leader
// or as a follower. Flight is the in-process one; a worker process reaches
// its server's, and a distributed store may offer one across machines.
type Flights interface {
	Join(key string) (call FlightJoin, leader bool)
}

// FlightJoin is one caller's part in a call in flight: the leader does the
// work and calls Finish; followers Wait for its result.
type FlightJoin interface {
	Finish(val json.RawMessage, err error)
	Wait(ctx context.Context) (json.RawMessage, error)
}

var _ Flights = (*Flight)(nil)

// Flight deduplicates concurrent work by key: while one caller (the leader)
// does the work for a key, later callers join it and receive its result
// instead of doing the work again. It is how one refresh serves all the
// concurrent callers of one engine. The zero value is ready to use.
type Flight struct {
	mu    sync.Mutex
	calls map[string]*FlightCall
}

// FlightCall is one piece of work in flight.
type FlightCall struct {
	once sync.Once
	done chan struct{}
	val  json.RawMessage
	err  error
	f    *Flight
	key  string
}

// Join implements Flights.
func (f *Flight) Join(key string) (FlightJoin, bool) { return f.JoinCall(key) }

// JoinCall returns the call in flight for key, or starts one. leader is
// true for the caller that must do the work and call Finish.
func (f *Flight) JoinCall(key string) (c *FlightCall, leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c, false
	}
	if f.calls == nil {
		f.calls = map[string]*FlightCall{}
	}
	c = &FlightCall{done: make(chan struct{}), f: f, key: key}
	f.calls[key] = c
	return c, true
}

// Finish records the leader's result and releases everyone waiting. Later
// callers of Join for the same key start a new call. Only the first Finish
// counts.
func (c *FlightCall) Finish(val json.RawMessage, err error) {
	c.once.Do(func() {
		c.f.mu.Lock()
		if c.f.calls[c.key] == c {
			delete(c.f.calls, c.key)
		}
		c.f.mu.Unlock()
		c.val, c.err = val, err
		close(c.done)
	})
}

// Wait blocks until the leader finishes or ctx is done.
func (c *FlightCall) Wait(ctx context.Context) (json.RawMessage, error) {
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// FlightApp is the store app where the processes sharing a store that
// locks (a Locker) publish the results of their singleFlight calls to one
// another. Its keys are the apps' flight keys.
const FlightApp = "modrun.flights"

// SharedTurn is a singleFlight leader's turn across every process on a
// store that locks (a distributed store): in one process Flight makes one
// leader per key; across processes the leaders take turns under the
// store's lock, and a leader that waited while a peer's call ran takes the
// peer's result instead of running the call again. A lock alone would not
// do: the waiting leader would repeat the work once the lock is free,
// spending a rotated refresh token a second time.
//
// A turn ends with Publish (the leader did the work) or End (it did not,
// or its run was abandoned); the lock is released either way.
type SharedTurn struct {
	st     Store
	key    string
	unlock func()

	mu    sync.Mutex
	ended bool

	peer    bool
	peerVal json.RawMessage
	peerErr error
}

// flightRecord is what a leader publishes under FlightApp. ID changes with
// every call, so that a waiting leader can tell that a call ran.
type flightRecord struct {
	ID     string          `json:"id"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// TakeTurn waits, until ctx ends, for the turn of app's call key across
// the processes on st (whose lock l is). Peer reports whether a peer's
// call finished meanwhile; if not, the caller does the work and publishes
// it.
func TakeTurn(ctx context.Context, st Store, l Locker, app, key string) (*SharedTurn, error) {
	t := &SharedTurn{st: st, key: strconv.Quote(app) + " " + key}
	before, err := t.read(ctx)
	if err != nil {
		return nil, err
	}
	if t.unlock, err = l.Lock(ctx, FlightApp, t.key); err != nil {
		return nil, err
	}
	after, err := t.read(ctx)
	if err != nil {
		t.End()
		return nil, err
	}
	if after != nil && (before == nil || after.ID != before.ID) {
		// A peer's call ran while we waited: it is this call's result.
		t.peer, t.peerVal = true, after.Result
		if after.Error != "" {
			t.peerErr = errors.New(after.Error)
		}
		t.End()
	}
	return t, nil
}

func (t *SharedTurn) read(ctx context.Context) (*flightRecord, error) {
	raw, err := t.st.Get(ctx, FlightApp, t.key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r flightRecord
	if json.Unmarshal(raw, &r) != nil {
		return nil, nil // not a record: the next publish replaces it
	}
	return &r, nil
}

// Peer returns the result of the peer's call that finished while this
// leader waited for its turn; ok is false when there is none and this
// leader must do the work. A peer's failure comes back as err.
func (t *SharedTurn) Peer() (val json.RawMessage, err error, ok bool) {
	return t.peerVal, t.peerErr, t.peer
}

// Publish records the leader's result for the leaders of other processes
// waiting for their turn, then ends the turn. errMsg, if not empty, is
// the call's failure (already redacted: peers return it as it is). The
// write is fenced by the lock: a leader whose lock expired cannot publish.
// A turn already ended publishes nothing.
func (t *SharedTurn) Publish(ctx context.Context, val json.RawMessage, errMsg string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return nil
	}
	defer t.endLocked()
	var id [16]byte
	rand.Read(id[:])
	rec := flightRecord{ID: hex.EncodeToString(id[:]), Error: errMsg}
	if errMsg == "" {
		rec.Result = val
		if len(rec.Result) == 0 {
			rec.Result = json.RawMessage("null")
		}
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return t.st.Set(ctx, FlightApp, t.key, raw)
}

// End releases the turn without publishing. It is safe to call more than
// once, and after Publish.
func (t *SharedTurn) End() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endLocked()
}

func (t *SharedTurn) endLocked() {
	if !t.ended {
		t.ended = true
		t.unlock()
	}
}
