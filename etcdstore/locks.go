// Locks across processes: leases, fencing, and the sessions that keep them.

package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/modrun/modrun/engine"
)

// LockTTL is the lease of a held lock: kept alive while its holder runs,
// it expires this long after the holder stops (a crash, a pause, a lost
// network), and another process may then take the lock.
const LockTTL = 10 * time.Second

// MinLockTTL is the shortest lease a store URL may ask for (?lock-ttl=):
// etcd raises shorter ones to about 1.5 s anyway.
const MinLockTTL = 2 * time.Second

// LockTTL is the lease of this store's locks (Config.LockTTL, else the
// package's LockTTL). A holder bounds work that must end under its lock
// by it (an OAuth2 token request).
func (s *Store) LockTTL() time.Duration {
	if s.cfg.LockTTL > 0 {
		return s.cfg.LockTTL
	}
	return LockTTL
}

// ErrLockLost is returned for a write made under a lock the store no longer
// holds (its lease expired): the write is refused, because another process
// may hold the lock and have written a newer value.
var ErrLockLost = errors.New("the lock on the key was lost (its lease expired); the write was refused")

func (s *Store) lockKey(app, key string) string {
	return s.cfg.Prefix + "/locks/" + url.PathEscape(app) + "/" + url.PathEscape(key)
}

// fence is the condition "this process still holds the lock on (app,
// key)", or nil if it does not hold it.
func (s *Store) fence(app, key string) *clientv3.Cmp {
	s.mu.Lock()
	m := s.held[s.lockKey(app, key)]
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	c := m.IsOwner()
	return &c
}

// Lock implements engine.Locker: it waits (until ctx ends) for the lock on
// (app, key) across every process on the store. The lock lives on a lease
// of LockTTL, kept alive while this process runs; writes to (app, key)
// through this store while it is held are fenced by it. unlock releases
// it.
func (s *Store) Lock(ctx context.Context, app, key string) (unlock func(), err error) {
	if err := checkAppKey(app, key); err != nil {
		return nil, err
	}
	name := s.lockKey(app, key)
	if err := s.ready(); err != nil {
		return nil, err
	}
	// etcd's Mutex is per session, not per goroutine: one holder in this
	// process at a time.
	s.mu.Lock()
	ch := s.local[name]
	if ch == nil {
		ch = make(chan struct{}, 1)
		s.local[name] = ch
	}
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lock %s: %w", engine.QuoteKey(key), ctx.Err())
	}
	release := func() { <-ch }

	lctx, cancel := withTimeout(ctx)
	defer cancel()
	var m *concurrency.Mutex
	for attempt := 0; ; attempt++ {
		sess, err := s.sessionFor(lctx)
		if err != nil {
			release()
			return nil, fmt.Errorf("lock %s: %w", engine.QuoteKey(key), err)
		}
		m = concurrency.NewMutex(sess, name)
		err = m.Lock(lctx)
		if err == nil {
			break
		}
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && attempt == 0 {
			// The lease expired before the keep-alive noticed: a new one.
			s.dropSession(sess)
			continue
		}
		release()
		return nil, fmt.Errorf("lock %s: %w", engine.QuoteKey(key), s.fail(err))
	}
	s.mu.Lock()
	s.held[name] = m
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.held, name)
			s.mu.Unlock()
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = m.Unlock(uctx) // failing, the lease expires it
			release()
		})
	}, nil
}

// sessionFor returns the live session of this store's locks, starting a
// new one if there is none or the last one's lease expired.
func (s *Store) sessionFor(ctx context.Context) (*concurrency.Session, error) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if err := s.ready(); err != nil {
		return nil, err
	}
	if s.session != nil {
		select {
		case <-s.session.Done():
			s.session = nil // its lease is gone; locks on it were lost
		default:
			return s.session, nil
		}
	}
	sctx, cancel := withTimeout(ctx)
	defer cancel()
	// The grant is bounded by the caller's deadline; the keep-alive lives
	// until Close.
	lease, err := s.cli.Grant(sctx, int64(s.LockTTL()/time.Second))
	if err != nil {
		return nil, s.fail(err)
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(lease.ID), concurrency.WithContext(context.Background()))
	if err != nil {
		return nil, s.fail(err)
	}
	s.session = sess
	return sess, nil
}

// dropSession forgets sess, so that the next Lock starts a new one.
func (s *Store) dropSession(sess *concurrency.Session) {
	s.sessMu.Lock()
	if s.session == sess {
		s.session = nil
	}
	s.sessMu.Unlock()
	sess.Orphan()
}
