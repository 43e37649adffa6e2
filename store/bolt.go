package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/modrun/modrun/engine"
)

var (
	_ engine.Store        = (*DB)(nil)
	_ engine.AsyncSetter  = (*DB)(nil)
	_ engine.AsyncDeleter = (*DB)(nil)
)

// DefaultTimeout is how long Open waits for a file another process holds.
const DefaultTimeout = 5 * time.Second

// Options configure Open. The zero value (or nil) gives the defaults.
type Options struct {
	// Timeout is how long to wait for a file locked by another process.
	// Zero means DefaultTimeout; negative means do not wait at all.
	Timeout time.Duration
	// MaxValueLen limits a value's size in bytes. Zero means
	// engine.DefaultMaxValueLen.
	MaxValueLen int
	// MaxGroup limits how many writes share one commit. Zero means 256.
	MaxGroup int
}

// DB is a durable store in one bbolt file.
type DB struct {
	path     string
	bolt     *bolt.DB
	maxValue int
	maxGroup int

	writes chan *write
	mu     sync.RWMutex // guards closed against in-flight sends
	closed bool
	done   chan struct{}

	// broken is the error of a fault (a page past the end of a file cut
	// short under us) that bbolt could not unwind: its rollback faulted
	// too, leaving its writer lock held, so every later transaction — and
	// Close — would wait for ever. Once set, the store answers only this.
	broken atomic.Pointer[error]
}

func init() {
	engine.RegisterStore("file", func(_ context.Context, url string) (engine.Store, error) {
		return Open(strings.TrimPrefix(url, "file://"), nil)
	})
}

// Open opens or creates the store file at path, creating missing parent
// directories. See Options for the lock timeout.
func Open(path string, opts *Options) (*DB, error) {
	if opts == nil {
		opts = &Options{}
	}
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		timeout = time.Nanosecond // bbolt treats 0 as "wait forever"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	bdb, err := openBolt(path, timeout)
	if err != nil {
		return nil, err
	}
	db := &DB{
		path:     path,
		bolt:     bdb,
		maxValue: opts.MaxValueLen,
		maxGroup: opts.MaxGroup,
		writes:   make(chan *write, 1024),
		done:     make(chan struct{}),
	}
	if db.maxGroup <= 0 {
		db.maxGroup = 256
	}
	go db.commitLoop()
	return db, nil
}

func openBolt(path string, timeout time.Duration) (bdb *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			bdb, err = nil, fmt.Errorf("open store %s: %w (%v)", path, engine.ErrCorrupt, r)
		}
	}()
	bdb, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, FreelistType: bolt.FreelistMapType})
	switch {
	case err == nil:
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open store %s: %w (waited %s; close the other runner or use another --store)", path, engine.ErrLocked, timeout)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, fmt.Errorf("open store %s: %w: %w", path, engine.ErrCorrupt, err)
	default:
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("open store %s: %w (choose a writable location with --store or $MODRUN_STORE)", path, err)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// A truncated file can pass bbolt's meta checks, and reading a page past
	// its end is a fault, not a panic: compare the size the meta page claims
	// with the file's, then touch every bucket's root.
	if verr := bdb.View(func(tx *bolt.Tx) error {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if tx.Size() > fi.Size() {
			return fmt.Errorf("file is %d bytes, its meta page says %d: truncated", fi.Size(), tx.Size())
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			b.Cursor().First()
			return nil
		})
	}); verr != nil {
		bdb.Close()
		return nil, fmt.Errorf("open store %s: %w: %w", path, engine.ErrCorrupt, verr)
	}
	return bdb, nil
}

// Path returns the file the store was opened from.
func (db *DB) Path() string { return db.path }

// Get implements engine.Store.
func (db *DB) Get(ctx context.Context, app, key string) (json.RawMessage, error) {
	var v json.RawMessage
	err := db.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(app)); b != nil {
			if raw := b.Get([]byte(key)); raw != nil {
				v = bytes.Clone(raw)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, engine.ErrNotFound
	}
	return v, nil
}

// Set implements engine.Store.
func (db *DB) Set(ctx context.Context, app, key string, value json.RawMessage) error {
	return db.SetAsync(ctx, app, key, value)()
}

// SetAsync implements engine.AsyncSetter: the write is queued (in order)
// before it returns; wait blocks until it is durable.
func (db *DB) SetAsync(ctx context.Context, app, key string, value json.RawMessage) (wait func() error) {
	v, err := db.check(app, key, value)
	if err != nil {
		return engine.Waited(err)
	}
	return db.enqueue(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(app))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), v)
	})
}

// Delete implements engine.Store.
func (db *DB) Delete(ctx context.Context, app, key string) error {
	return db.DeleteAsync(ctx, app, key)()
}

// DeleteAsync implements engine.AsyncDeleter: the delete is queued (in
// order with writes) before it returns; wait blocks until it is durable.
func (db *DB) DeleteAsync(ctx context.Context, app, key string) (wait func() error) {
	if err := checkApp(app); err != nil {
		return engine.Waited(err)
	}
	if err := engine.CheckKey(key); err != nil {
		return engine.Waited(err)
	}
	return db.enqueue(ctx, func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(app)); b != nil {
			return b.Delete([]byte(key))
		}
		return nil
	})
}

// List implements engine.Store.
func (db *DB) List(ctx context.Context, app string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(app))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	return out, err
}

// Apps returns the names of the apps that have values, sorted.
func (db *DB) Apps() ([]string, error) {
	var apps []string
	err := db.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if k, _ := b.Cursor().First(); k != nil {
				apps = append(apps, string(name))
			}
			return nil
		})
	})
	return apps, err
}

// Clear implements engine.Store.
func (db *DB) Clear(ctx context.Context, app string) error {
	if err := checkApp(app); err != nil {
		return err
	}
	return db.write(ctx, func(tx *bolt.Tx) error {
		err := tx.DeleteBucket([]byte(app))
		if errors.Is(err, bolterrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// CompareAndSwap implements engine.Store.
func (db *DB) CompareAndSwap(ctx context.Context, app, key string, old, new json.RawMessage) (bool, error) {
	old, new, err := casArgs(app, key, old, new, db.maxValue)
	if err != nil {
		return false, err
	}
	var swapped bool
	err = db.write(ctx, func(tx *bolt.Tx) error {
		swapped = false // the function may run twice (see commit)
		b, err := tx.CreateBucketIfNotExists([]byte(app))
		if err != nil {
			return err
		}
		cur := b.Get([]byte(key))
		if (old == nil) != (cur == nil) || !bytes.Equal(old, cur) {
			return nil
		}
		if new == nil {
			err = b.Delete([]byte(key))
		} else {
			err = b.Put([]byte(key), new)
		}
		swapped = err == nil
		return err
	})
	return swapped, err
}

// Close waits for queued writes to commit and closes the file.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.writes)
	db.mu.Unlock()
	<-db.done
	if err := db.brokenErr(); err != nil {
		// bbolt's lock is held by the transaction that faulted: its Close
		// would wait for ever. The file stays open (and locked) until the
		// process exits.
		return err
	}
	return db.bolt.Close()
}

func (db *DB) check(app, key string, value json.RawMessage) (json.RawMessage, error) {
	if err := checkApp(app); err != nil {
		return nil, err
	}
	if err := engine.CheckKey(key); err != nil {
		return nil, err
	}
	v, err := db.canonical(value)
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", engine.QuoteKey(key), err)
	}
	return v, nil
}

func (db *DB) canonical(v json.RawMessage) (json.RawMessage, error) {
	return engine.CanonicalValue(v, db.maxValue)
}

// casArgs checks the arguments of CompareAndSwap and returns old and new
// in canonical form (nil stays nil: absent).
func casArgs(app, key string, old, new json.RawMessage, maxValue int) (json.RawMessage, json.RawMessage, error) {
	if err := checkApp(app); err != nil {
		return nil, nil, err
	}
	if err := engine.CheckKey(key); err != nil {
		return nil, nil, err
	}
	var err error
	if old != nil {
		if old, err = engine.CanonicalValue(old, 0); err != nil {
			return nil, nil, fmt.Errorf("compare-and-swap %s: old: %w", engine.QuoteKey(key), err)
		}
	}
	if new != nil {
		if new, err = engine.CanonicalValue(new, maxValue); err != nil {
			return nil, nil, fmt.Errorf("compare-and-swap %s: new: %w", engine.QuoteKey(key), err)
		}
	}
	return old, new, nil
}

func checkApp(app string) error {
	if app == "" {
		return errors.New("empty app name")
	}
	if len(app) > bolt.MaxKeySize {
		return fmt.Errorf("app name is %d bytes, the limit is %d", len(app), bolt.MaxKeySize)
	}
	return nil
}
