// What a worker sends its server — answers, log lines, signs of life,
// store reads and writes, locks, flights — taken on the server's side.

package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/memlimit"
)

// startedFrames counts the "started" frames parents received: with a
// started board (Linux) there are none; read by the tests.
var startedFrames atomic.Int64

// handle takes one message from the worker: a call's answer, a log
// line, a sign of life or death, or a request it serves.
func (w *proc) handle(m *message) {
	if !m.wellFormed() {
		w.p.log.Error("a worker sent a frame without what its operation needs; stopping it", "worker", w.s.n, "op", string(m.Op))
		w.kill("protocol", fmt.Errorf("%w: the worker broke the protocol (a %q frame without its payload)", errWorkerStopped, m.Op))
		return
	}
	switch m.Op {
	case opLog:
		attrs := make([]any, 0, 2*len(m.Log.Attrs)+2)
		for k, v := range m.Log.Attrs {
			attrs = append(attrs, k, v)
		}
		attrs = append(attrs, "worker", w.s.n)
		w.p.log.Log(context.Background(), slog.Level(m.Log.Level), m.Log.Msg, attrs...)
	case opDying:
		w.mu.Lock()
		if e := m.answered().Err; e != nil && e.Kind == "deadline" {
			w.why, w.whyErr = "deadline", fmt.Errorf("%w: its worker was stopped, as another run on it overran its deadline", errWorkerStopped)
		} else {
			w.why, w.whyErr = "memory", fmt.Errorf("%w (%s)", engine.ErrMemoryLimit, memlimit.Format(w.p.opts.MaxMemory))
		}
		w.mu.Unlock()
	case opStarted:
		startedFrames.Add(1)
		w.mu.Lock()
		for _, id := range m.Started {
			if c := w.calls[id]; c != nil {
				c.started = true
			}
		}
		w.mu.Unlock()
	case opCall:
		w.mu.Lock()
		c := w.calls[m.Re]
		if c != nil {
			w.forget(m.Re, c)
		}
		w.answered = true
		w.mu.Unlock()
		if c != nil {
			c.reply <- reply{answer: m.answered()}
		}
	case opStore:
		go w.store(m)
	case opQuery:
		w.p.mu.Lock()
		o := w.p.obs[m.Inst]
		w.p.mu.Unlock()
		if o != nil {
			o.Query(m.Query.Module, m.Query.Status)
		}
	case opToken:
		w.p.mu.Lock()
		o := w.p.obs[m.Inst]
		w.p.mu.Unlock()
		if to, ok := o.(interface {
			TokenRequest(cred, grant, outcome string)
		}); ok {
			to.TokenRequest(m.Token.Credential, m.Token.Grant, m.Token.Outcome)
		}
	case opFlightJoin:
		j, leader := w.p.opts.Flights.Join(m.Flight)
		w.c.send(&message{Re: m.ID, Answer: &answer{OK: leader}})
		if leader {
			w.mu.Lock()
			w.leads[m.Inst] = j
			w.mu.Unlock()
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), w.p.opts.Timeout)
			defer cancel()
			val, err := j.Wait(ctx)
			w.c.send(&message{Op: opFlightResult, ID: m.Inst, Answer: &answer{Result: val, Err: toWire(err, plain)}})
		}()
	case opFlightFinish:
		w.mu.Lock()
		j := w.leads[m.Inst]
		delete(w.leads, m.Inst)
		w.mu.Unlock()
		if j != nil {
			a := m.answered()
			j.Finish(a.Result, fromWire(a.Err))
		}
	default:
		if m.Re != 0 { // a load's answer
			w.mu.Lock()
			ch := w.loading[m.Re]
			delete(w.loading, m.Re)
			w.mu.Unlock()
			if ch != nil {
				ch <- fromWire(m.answered().Err)
			}
		}
	}
}

// store runs a worker's store operation on the pool's store and answers
// once it is done (a write: once it is durable).
func (w *proc) store(m *message) {
	// A worker is untrusted (DESIGN §17): it may touch only the apps of
	// the instances it holds (and the flights' results). One that names
	// another has broken the protocol and is stopped.
	op := m.Store
	if op.Op != "unlock" && op.App != engine.FlightApp {
		w.mu.Lock()
		ok := w.appRefs[op.App] > 0
		w.mu.Unlock()
		if !ok {
			w.p.log.Error("a worker named an app none of its instances has; stopping it", "worker", w.s.n)
			w.kill("protocol", fmt.Errorf("%w: the worker broke the protocol (a store operation on another app)", errWorkerStopped))
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.p.opts.Timeout)
	defer cancel()
	st := w.p.opts.Store
	a := &answer{}
	var err error
	switch op.Op {
	case "get":
		a.Value, err = st.Get(ctx, op.App, op.Key)
	case "set":
		err = st.Set(ctx, op.App, op.Key, op.Value)
	case "delete":
		err = st.Delete(ctx, op.App, op.Key)
	case "list":
		a.Values, err = st.List(ctx, op.App)
	case "clear":
		err = st.Clear(ctx, op.App)
	case "cas":
		a.OK, err = st.CompareAndSwap(ctx, op.App, op.Key, op.Old, op.Value)
	case "lock":
		err = w.lock(ctx, m)
	case "unlock":
		w.mu.Lock()
		unlock := w.locks[m.Inst]
		delete(w.locks, m.Inst)
		if unlock == nil {
			w.unlocked[m.Inst] = true // the lock is still being taken
		}
		w.mu.Unlock()
		if unlock != nil {
			unlock()
		}
	default:
		err = fmt.Errorf("unknown store operation %q", op.Op)
	}
	a.Err = toWire(err, plain)
	w.c.send(&message{Re: m.ID, Answer: a})
}

// lock takes the pool store's lock for a worker (engine.Locker; a store
// without one needs no lock), held until the worker's unlock or its death.
func (w *proc) lock(ctx context.Context, m *message) error {
	l, ok := w.p.opts.Store.(engine.Locker)
	if !ok {
		return nil
	}
	unlock, err := l.Lock(ctx, m.Store.App, m.Store.Key)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if w.unlocked[m.ID] || w.isDead {
		delete(w.unlocked, m.ID)
		w.mu.Unlock()
		unlock()
		return nil
	}
	w.locks[m.ID] = unlock
	w.mu.Unlock()
	return nil
}
