package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/modrun/modrun/engine"
)

// opTimeout bounds one etcd request whose context has no deadline, so
// that an unreachable cluster fails a command instead of hanging it.
const opTimeout = 10 * time.Second

// Store is an engine.Store in etcd. Its Lock is an engine.Locker across
// every process on the same cluster and prefix. It is safe for concurrent
// use.
type Store struct {
	cfg      Config
	cli      *clientv3.Client
	maxValue int

	// sessMu guards session alone: starting one is a network request,
	// which must not hold up the other operations that take mu.
	sessMu  sync.Mutex
	session *concurrency.Session // the lease of the locks; nil until the first Lock

	mu      sync.Mutex
	local   map[string]chan struct{} // one holder per lock in this process
	held    map[string]*concurrency.Mutex
	closed  bool
	queue   chan *queued  // SetAsync's writes; nil until the first
	flushed chan struct{} // closed when the queue is drained after Close
}

var (
	_ engine.Store  = (*Store)(nil)
	_ engine.Locker = (*Store)(nil)
)

// Open connects to the store that rawURL names (see ParseURL). It does not
// wait for the cluster: the first request that cannot reach it fails,
// naming the endpoints.
func Open(rawURL string) (*Store, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return OpenConfig(cfg)
}

// OpenConfig is Open with the configuration already parsed.
func OpenConfig(cfg Config) (*Store, error) {
	cc := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: 5 * time.Second,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zap.NewNop(), // its errors reach the caller; its logs would carry endpoints at best
	}
	if cfg.TLS {
		info := transport.TLSInfo{TrustedCAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
		tc, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("%s: TLS: %w", cfg, err)
		}
		cc.TLS = tc
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	return &Store{cfg: cfg, cli: cli, maxValue: engine.DefaultMaxValueLen,
		local: map[string]chan struct{}{}, held: map[string]*concurrency.Mutex{}}, nil
}

// String is the store's URL without its password.
func (s *Store) String() string { return s.cfg.String() }

// Layout under the prefix P (app names are path-escaped, so that no app
// reaches into another's range; keys are kept as they are, inside it):
//
//	P/kv/APP/KEY      the value of KEY, compact JSON
//	P/locks/APP/KEY   the lock of KEY (etcd's concurrency.Mutex keys below it)
func (s *Store) appRange(app string) string {
	return s.cfg.Prefix + "/kv/" + url.PathEscape(app) + "/"
}

func (s *Store) fail(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("etcd store at %s: no answer before the deadline: %w", strings.Join(s.cfg.Endpoints, ","), err)
	}
	return fmt.Errorf("etcd store at %s: %w", strings.Join(s.cfg.Endpoints, ","), err)
}

// withTimeout bounds one request: by opTimeout if ctx has no deadline,
// else a little before ctx's, so that an unreachable cluster fails the
// caller with the store's error (naming the endpoints) rather than the
// caller's own deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, opTimeout)
	}
	margin := min(max(time.Until(d)/20, 5*time.Millisecond), 250*time.Millisecond)
	return context.WithDeadline(ctx, d.Add(-margin))
}

// ready returns engine.ErrClosed after Close.
func (s *Store) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("etcd store: %w", engine.ErrClosed)
	}
	return nil
}

func checkApp(app string) error {
	if app == "" {
		return errors.New("empty app name")
	}
	if len(app) > engine.MaxKeyLen {
		return fmt.Errorf("app name is %d bytes, the limit is %d", len(app), engine.MaxKeyLen)
	}
	return nil
}

func checkAppKey(app, key string) error {
	if err := checkApp(app); err != nil {
		return err
	}
	return engine.CheckKey(key)
}

// Get implements engine.Store.
func (s *Store) Get(ctx context.Context, app, key string) (json.RawMessage, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if err := checkAppKey(app, key); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.appRange(app)+key)
	if err != nil {
		return nil, s.fail(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, engine.ErrNotFound
	}
	return json.RawMessage(resp.Kvs[0].Value), nil
}

// Set implements engine.Store. It returns once etcd has committed the
// write.
func (s *Store) Set(ctx context.Context, app, key string, value json.RawMessage) error {
	if err := checkAppKey(app, key); err != nil {
		return err
	}
	v, err := engine.CanonicalValue(value, s.maxValue)
	if err != nil {
		return fmt.Errorf("set %s: %w", engine.QuoteKey(key), err)
	}
	return s.write(ctx, app, key, clientv3.OpPut(s.appRange(app)+key, string(v)))
}

// Delete implements engine.Store.
func (s *Store) Delete(ctx context.Context, app, key string) error {
	if err := checkAppKey(app, key); err != nil {
		return err
	}
	return s.write(ctx, app, key, clientv3.OpDelete(s.appRange(app)+key))
}

// write commits op, fenced by the lock on (app, key) if this process holds
// it.
func (s *Store) write(ctx context.Context, app, key string, op clientv3.Op) error {
	if err := s.ready(); err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	fence := s.fence(app, key)
	if fence == nil {
		if _, err := s.cli.Do(ctx, op); err != nil {
			return s.fail(err)
		}
		return nil
	}
	resp, err := s.cli.Txn(ctx).If(*fence).Then(op).Commit()
	if err != nil {
		return s.fail(err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%s: %w", engine.QuoteKey(key), ErrLockLost)
	}
	return nil
}

// List implements engine.Store.
func (s *Store) List(ctx context.Context, app string) (map[string]json.RawMessage, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if err := checkApp(app); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	r := s.appRange(app)
	resp, err := s.cli.Get(ctx, r, clientv3.WithPrefix())
	if err != nil {
		return nil, s.fail(err)
	}
	out := make(map[string]json.RawMessage, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key[len(r):])] = json.RawMessage(kv.Value)
	}
	return out, nil
}

// Apps returns the names of the apps that have keys, sorted.
func (s *Store) Apps() ([]string, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	r := s.cfg.Prefix + "/kv/"
	resp, err := s.cli.Get(ctx, r, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, s.fail(err)
	}
	var apps []string
	for _, kv := range resp.Kvs {
		esc, _, _ := strings.Cut(string(kv.Key[len(r):]), "/")
		app, err := url.PathUnescape(esc)
		if err != nil {
			continue // not written by this package
		}
		if len(apps) == 0 || apps[len(apps)-1] != app {
			apps = append(apps, app)
		}
	}
	return apps, nil
}

// Clear implements engine.Store.
func (s *Store) Clear(ctx context.Context, app string) error {
	if err := s.ready(); err != nil {
		return err
	}
	if err := checkApp(app); err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := s.cli.Delete(ctx, s.appRange(app), clientv3.WithPrefix())
	return s.fail(err)
}

// CompareAndSwap implements engine.Store, as one etcd transaction (inside
// the fence of the key's lock, if this process holds it).
func (s *Store) CompareAndSwap(ctx context.Context, app, key string, old, new json.RawMessage) (bool, error) {
	if err := s.ready(); err != nil {
		return false, err
	}
	if err := checkAppKey(app, key); err != nil {
		return false, err
	}
	var err error
	if old != nil {
		if old, err = engine.CanonicalValue(old, 0); err != nil {
			return false, fmt.Errorf("compare-and-swap %s: old: %w", engine.QuoteKey(key), err)
		}
	}
	if new != nil {
		if new, err = engine.CanonicalValue(new, s.maxValue); err != nil {
			return false, fmt.Errorf("compare-and-swap %s: new: %w", engine.QuoteKey(key), err)
		}
	}
	k := s.appRange(app) + key
	cmp := clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
	if old != nil {
		cmp = clientv3.Compare(clientv3.Value(k), "=", string(old))
	}
	op := clientv3.OpDelete(k)
	if new != nil {
		op = clientv3.OpPut(k, string(new))
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	fence := s.fence(app, key)
	if fence == nil {
		resp, err := s.cli.Txn(ctx).If(cmp).Then(op).Commit()
		if err != nil {
			return false, s.fail(err)
		}
		return resp.Succeeded, nil
	}
	// The outer transaction checks the lock, the inner one the value.
	resp, err := s.cli.Txn(ctx).If(*fence).Then(clientv3.OpTxn([]clientv3.Cmp{cmp}, []clientv3.Op{op}, nil)).Commit()
	if err != nil {
		return false, s.fail(err)
	}
	if !resp.Succeeded {
		return false, fmt.Errorf("%s: %w", engine.QuoteKey(key), ErrLockLost)
	}
	return resp.Responses[0].GetResponseTxn().Succeeded, nil
}

// Close releases the locks' lease and closes the connection.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.queue != nil {
		close(s.queue)
	}
	flushed := s.flushed
	s.mu.Unlock()
	if flushed != nil {
		<-flushed // queued writes commit before the connection closes
	}
	s.sessMu.Lock() // after a session being started; none starts once closed
	sess := s.session
	s.sessMu.Unlock()
	if sess != nil {
		sess.Close()
	}
	return s.cli.Close()
}
