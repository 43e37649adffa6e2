package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"sync"

	"github.com/modrun/modrun/engine"
)

var (
	_ engine.Store     = (*Memory)(nil)
	_ engine.AppLister = (*Memory)(nil)
)

// Memory is an in-process store. Nothing survives Close or the process;
// use it for tests and throwaway runs.
type Memory struct {
	// MaxValueLen limits a value's size in bytes; zero means
	// engine.DefaultMaxValueLen.
	MaxValueLen int

	mu     sync.Mutex
	apps   map[string]map[string]json.RawMessage
	closed bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{apps: map[string]map[string]json.RawMessage{}} }

func (m *Memory) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return engine.ErrClosed
	}
	return nil
}

// Get implements engine.Store.
func (m *Memory) Get(ctx context.Context, app, key string) (json.RawMessage, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	v, ok := m.apps[app][key]
	if !ok {
		return nil, engine.ErrNotFound
	}
	return bytes.Clone(v), nil
}

// Set implements engine.Store.
func (m *Memory) Set(ctx context.Context, app, key string, value json.RawMessage) error {
	if err := checkApp(app); err != nil {
		return err
	}
	if err := engine.CheckKey(key); err != nil {
		return err
	}
	v, err := engine.CanonicalValue(value, m.MaxValueLen)
	if err != nil {
		return fmt.Errorf("set %s: %w", engine.QuoteKey(key), err)
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.bucket(app)[key] = v
	return nil
}

func (m *Memory) bucket(app string) map[string]json.RawMessage {
	b, ok := m.apps[app]
	if !ok {
		b = map[string]json.RawMessage{}
		m.apps[app] = b
	}
	return b
}

// Delete implements engine.Store.
func (m *Memory) Delete(ctx context.Context, app, key string) error {
	if err := engine.CheckKey(key); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.apps[app], key)
	return nil
}

// List implements engine.Store.
func (m *Memory) List(ctx context.Context, app string) (map[string]json.RawMessage, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := maps.Clone(m.apps[app])
	if out == nil {
		out = map[string]json.RawMessage{}
	}
	return out, nil
}

// Clear implements engine.Store.
func (m *Memory) Clear(ctx context.Context, app string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.apps, app)
	return nil
}

// CompareAndSwap implements engine.Store.
func (m *Memory) CompareAndSwap(ctx context.Context, app, key string, old, new json.RawMessage) (bool, error) {
	old, new, err := casArgs(app, key, old, new, m.MaxValueLen)
	if err != nil {
		return false, err
	}
	if err := m.lock(); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	cur, ok := m.apps[app][key]
	if ok != (old != nil) || !bytes.Equal(cur, old) {
		return false, nil
	}
	if new == nil {
		delete(m.apps[app], key)
	} else {
		m.bucket(app)[key] = new
	}
	return true, nil
}

// Close implements engine.Store.
// Apps implements engine.AppLister: the apps that hold values, sorted.
func (m *Memory) Apps() ([]string, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.apps))
	for app, vals := range m.apps {
		if len(vals) > 0 {
			out = append(out, app)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.apps = nil
	return nil
}
