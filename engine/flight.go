package engine

import (
	"context"
	"encoding/json"
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
