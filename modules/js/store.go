// The store's globals: storeValue, removeValue, clearStore,
// compareAndSwapValue, and appsmith.store, a read-only view.

package js

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dop251/goja"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/redact"
)

func (v *vm) storeKey(call goja.FunctionCall, fn string) string {
	k := call.Argument(0)
	if _, sym := k.(*goja.Symbol); sym || !isString(k) {
		v.throw(fmt.Errorf("%s: the key must be a string, got %s", fn, k.String()))
	}
	key := k.String()
	if engine.ReservedKey(key) {
		v.throw(fmt.Errorf("%s(%s): oauth2.* keys hold credentials' token sets, which only modrun writes (oauth2.NAME.refresh(), .logout(), runner login)", fn, engine.QuoteKey(key)))
	}
	if err := engine.CheckKey(key); err != nil {
		v.throw(fmt.Errorf("%s(%s): %w", fn, engine.QuoteKey(key), err))
	}
	return key
}

// storeValue(key, value, persist = true) stores durably (fsync) before
// returning; appsmith.store sees the value at once.
func (v *vm) storeValue(call goja.FunctionCall) goja.Value {
	key := v.storeKey(call, "storeValue")
	raw, err := v.storable(key, call.Argument(1))
	if err != nil {
		v.throw(err)
	}
	persist := true
	if p := call.Argument(2); !goja.IsUndefined(p) {
		persist = p.ToBoolean()
	}
	if err := v.h.serving().storeQuota(len(key) + len(raw)); err != nil {
		v.throw(fmt.Errorf("storeValue(%q): %w", key, err))
	}
	v.learnStored(key, call.Argument(1), raw)
	if v.debug {
		v.log.Debug("storeValue", "key", key, "persist", persist, "bytes", len(raw))
	}
	if !persist {
		if err := v.session.Set(v.ctx(), key, raw, false); err != nil {
			v.throw(fmt.Errorf("storeValue(%q): %w", key, err))
		}
		return v.resolved(goja.Undefined())
	}
	// Visible at once; durable when the promise resolves. The loop does not
	// wait for the disk, so other runs of this instance share the commit.
	wait := v.session.SetAsync(v.ctx(), key, raw)
	promise, resolve, reject := v.rt.NewPromise()
	// The run's caller gets its result only once this write is durable,
	// awaited or not (see Call); so the wait runs on a worker, never on
	// that caller.
	r := v.h.serving()
	counted := r != nil && !r.done
	if counted {
		r.writes.Add(1)
	}
	back := v.h.callback()
	v.h.background(func() {
		err := wait()
		back(func() {
			if err != nil {
				v.check(reject(v.newError(fmt.Errorf("storeValue(%q): %w", key, err), nil)))
				return
			}
			v.check(resolve(goja.Undefined()))
		})
		if counted {
			r.writes.Done()
		}
	})
	return v.rt.ToValue(promise)
}

// learnStored learns the secrets in a value stored under key: the value
// itself under a secret-named key, and secret-named fields within it.
func (v *vm) learnStored(key string, val goja.Value, raw json.RawMessage) {
	if isString(val) && redact.SecretKey(key) {
		v.redact.Learn(val.String())
	}
	v.redact.LearnJSON(raw)
}

func (v *vm) removeValue(call goja.FunctionCall) goja.Value {
	key := v.storeKey(call, "removeValue")
	if err := v.session.Delete(v.ctx(), key); err != nil {
		v.throw(fmt.Errorf("removeValue(%q): %w", key, err))
	}
	return v.resolved(goja.Undefined())
}

func (v *vm) clearStore(call goja.FunctionCall) goja.Value {
	if err := v.session.Clear(v.ctx()); err != nil {
		v.throw(fmt.Errorf("clearStore: %w", err))
	}
	return v.resolved(goja.Undefined())
}

// compareAndSwapValue(key, old, new) resolves to true if the persisted
// value of key was old (undefined: absent) and is now new (undefined:
// removed).
func (v *vm) compareAndSwapValue(call goja.FunctionCall) goja.Value {
	key := v.storeKey(call, "compareAndSwapValue")
	var old, new json.RawMessage
	var err error
	if a := call.Argument(1); !goja.IsUndefined(a) {
		if old, err = v.storable(key, a); err != nil {
			v.throw(err)
		}
	}
	if a := call.Argument(2); !goja.IsUndefined(a) {
		if new, err = v.storable(key, a); err != nil {
			v.throw(err)
		}
		v.learnStored(key, a, new)
	}
	ok, err := v.session.CompareAndSwap(v.ctx(), key, old, new)
	if err != nil {
		v.throw(fmt.Errorf("compareAndSwapValue(%q): %w", key, err))
	}
	return v.resolved(v.rt.ToValue(ok))
}

// storeView is appsmith.store: reads see the session layer, writes throw.
type storeView struct{ v *vm }

func (s *storeView) Get(key string) goja.Value {
	raw, err := s.v.session.Get(s.v.ctx(), key)
	if errors.Is(err, engine.ErrNotFound) || engine.CheckKey(key) != nil {
		return nil
	}
	if err != nil {
		s.v.throw(fmt.Errorf("appsmith.store.%s: %w", key, err))
	}
	val, err := s.v.fromJSON(raw)
	if err != nil {
		s.v.throw(fmt.Errorf("appsmith.store.%s: %w", key, err))
	}
	if isString(val) && redact.SecretKey(key) {
		s.v.redact.Learn(val.String())
	}
	s.v.redact.LearnJSON(raw)
	return val
}

func (s *storeView) readOnly(key string) {
	panic(s.v.rt.NewTypeError("appsmith.store is read-only: use storeValue(%q, value) to change it", key))
}

func (s *storeView) Set(key string, _ goja.Value) bool { s.readOnly(key); return false }

func (s *storeView) Delete(key string) bool { s.readOnly(key); return false }

func (s *storeView) Has(key string) bool {
	_, err := s.v.session.Get(s.v.ctx(), key)
	return err == nil
}

func (s *storeView) Keys() []string {
	keys, err := s.v.session.Keys(s.v.ctx())
	if err != nil {
		s.v.throw(fmt.Errorf("appsmith.store: %w", err))
	}
	return keys
}
