package etcdstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/engine/enginetest"
	"github.com/modrun/modrun/etcdstore"
	"github.com/modrun/modrun/internal/etcdtest"
)

func open(t *testing.T, url string) *etcdstore.Store {
	t.Helper()
	st, err := etcdstore.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	srv := etcdtest.Start(t)
	var n atomic.Int64
	enginetest.TestStore(t, func(t *testing.T) engine.Store {
		st, err := etcdstore.Open(srv.URL(fmt.Sprintf("conformance-%d", n.Add(1))))
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// An app's name cannot reach into another app's keys, nor a prefix into
// another prefix.
func TestAppsCannotEscape(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	st := open(t, srv.URL("p"))
	if err := st.Set(ctx, "a/kv/b", "k", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	if err := st.Set(ctx, "b", "x", json.RawMessage(`2`)); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"a", "b/..", "..", "a%2Fkv%2Fb"} {
		all, err := st.List(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 0 {
			t.Errorf("List(%q) = %v, want nothing", app, all)
		}
	}
	apps, err := st.Apps()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(apps) != "[a/kv/b b]" {
		t.Errorf("Apps = %q", apps)
	}
	other := open(t, srv.URL("p2"))
	if all, _ := other.List(ctx, "b"); len(all) != 0 {
		t.Errorf("another prefix sees %v", all)
	}
}

// One holder at a time across two stores (two connections, as two
// processes would have).
func TestLockIsExclusiveAcrossClients(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	stores := []*etcdstore.Store{open(t, srv.URL("p")), open(t, srv.URL("p"))}
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			st := stores[i%2]
			unlock, err := st.Lock(ctx, "app", "token")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			if err := st.Set(ctx, "app", "token", json.RawMessage(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if m := maxInside.Load(); m != 1 {
		t.Fatalf("%d holders at once, want 1", m)
	}
}

// A holder whose lease expired cannot write after another process took the
// lock: its write is refused, and the newer value stays.
func TestFencedWriteAfterLeaseLost(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	a, b := open(t, srv.URL("p")), open(t, srv.URL("p"))
	unlockA, err := a.Lock(ctx, "app", "refresh_token")
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	if err := a.Set(ctx, "app", "refresh_token", json.RawMessage(`"rt-1"`)); err != nil {
		t.Fatalf("a write under a held lock: %v", err)
	}
	// A's lease ends as it would after a pause past LockTTL.
	raw, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	resp, err := raw.Get(ctx, "/p/locks/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("lock keys: %v, %v", resp, err)
	}
	if _, err := raw.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	unlockB, err := b.Lock(lctx, "app", "refresh_token")
	if err != nil {
		t.Fatalf("B could not take the lock A lost: %v", err)
	}
	if err := b.Set(ctx, "app", "refresh_token", json.RawMessage(`"rt-2"`)); err != nil {
		t.Fatal(err)
	}
	err = a.Set(ctx, "app", "refresh_token", json.RawMessage(`"rt-stale"`))
	if !errors.Is(err, etcdstore.ErrLockLost) {
		t.Fatalf("A's write after losing the lock: err = %v, want ErrLockLost", err)
	}
	if _, err := a.CompareAndSwap(ctx, "app", "refresh_token", json.RawMessage(`"rt-2"`), json.RawMessage(`"rt-stale"`)); !errors.Is(err, etcdstore.ErrLockLost) {
		t.Fatalf("A's compare-and-swap after losing the lock: err = %v, want ErrLockLost", err)
	}
	unlockB()
	v, err := b.Get(ctx, "app", "refresh_token")
	if err != nil || string(v) != `"rt-2"` {
		t.Fatalf("value = %s, %v; want the newer \"rt-2\"", v, err)
	}
	// A takes the lock again on a new lease.
	unlockA()
	unlock, err := a.Lock(lctx, "app", "refresh_token")
	if err != nil {
		t.Fatalf("A relocks: %v", err)
	}
	if err := a.Set(ctx, "app", "refresh_token", json.RawMessage(`"rt-3"`)); err != nil {
		t.Fatal(err)
	}
	unlock()
}

// etcd down (connections refused) or paused (frozen by SIGSTOP:
// connections open, nothing answers, as in a network pause): reads and
// writes fail by their deadline naming the endpoint; etcd back: the same
// store works again, and every acknowledged write is there. A write that
// failed by its deadline may still be applied when a paused etcd resumes
// (it was never acknowledged: either outcome is right), so those go to an
// app of their own.
func TestUnreachableAndRecovery(t *testing.T) {
	for _, fault := range []struct {
		name       string
		start, end func(*etcdtest.Server)
	}{
		{"down", (*etcdtest.Server).Stop, (*etcdtest.Server).Restart},
		{"paused", (*etcdtest.Server).Pause, (*etcdtest.Server).Resume},
	} {
		t.Run(fault.name, func(t *testing.T) {
			srv := etcdtest.Start(t)
			ctx := context.Background()
			st := open(t, srv.URL("p"))
			for i := range 50 {
				if err := st.Set(ctx, "app", fmt.Sprint("k", i), json.RawMessage(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			fault.start(srv) // a paused etcd is killed by the test's cleanup if it fails
			for _, op := range []struct {
				name string
				do   func(context.Context) error
			}{
				{"Set", func(ctx context.Context) error { return st.Set(ctx, "fault", "late", json.RawMessage(`1`)) }},
				{"Get", func(ctx context.Context) error { _, err := st.Get(ctx, "app", "k1"); return err }},
				{"CompareAndSwap", func(ctx context.Context) error {
					_, err := st.CompareAndSwap(ctx, "fault", "cas", nil, json.RawMessage(`2`))
					return err
				}},
			} {
				dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				start := time.Now()
				err := op.do(dctx)
				cancel()
				if err == nil || !strings.Contains(err.Error(), srv.Endpoint) {
					t.Errorf("%s with etcd %s: err = %v, want one naming %s", op.name, fault.name, err, srv.Endpoint)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("%s with etcd %s failed after %v, past its 500ms deadline", op.name, fault.name, d)
				}
			}
			fault.end(srv)
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if err := st.Set(rctx, "fault", "after", json.RawMessage(`1`)); err != nil {
				t.Fatalf("a write after etcd came back: %v", err)
			}
			all, err := st.List(rctx, "app")
			if err != nil {
				t.Fatalf("after etcd came back: %v", err)
			}
			if len(all) != 50 {
				t.Fatalf("%d keys after etcd came back, want the 50 acknowledged", len(all))
			}
			for i := range 50 {
				if string(all[fmt.Sprint("k", i)]) != fmt.Sprint(i) {
					t.Fatalf("k%d = %s after etcd came back, want the acknowledged %d", i, all[fmt.Sprint("k", i)], i)
				}
			}
		})
	}
}

func TestOpenErrorsHidePassword(t *testing.T) {
	for _, u := range []string{"etcd://user:s3cret@nohostport/p", "etcds://user:s3cret@h:1,/p", "etcd://:s3cret@h:1/p"} {
		_, err := etcdstore.Open(u)
		if err == nil {
			t.Errorf("Open(%s): no error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open: error %q shows the password", err)
		}
	}
}

// SetAsync's group commit keeps order (the later write to a key wins) and
// Close commits what is queued.
func TestSetAsyncOrderAndClose(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	st, err := etcdstore.Open(srv.URL("async"))
	if err != nil {
		t.Fatal(err)
	}
	var waits []func() error
	for i := range 500 {
		waits = append(waits, st.SetAsync(ctx, "app", fmt.Sprint("k", i%7), json.RawMessage(fmt.Sprint(i))))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, w := range waits {
		if err := w(); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetAsync(ctx, "app", "late", json.RawMessage(`1`))(); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("SetAsync after Close: %v, want ErrClosed", err)
	}
	if _, err := st.Lock(ctx, "app", "k0"); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Lock after Close: %v, want ErrClosed", err)
	}
	again := open(t, srv.URL("async"))
	all, err := again.List(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	for k := range 7 {
		want := fmt.Sprint(499 - (499-k)%7)
		if got := string(all[fmt.Sprint("k", k)]); got != want {
			t.Errorf("k%d = %s, want the last write %s", k, got, want)
		}
	}
}

// TestRestartUnderLoad: writers keep writing while etcd is killed and
// restarted. Every write that was acknowledged is there afterwards (each
// key holds at least its last acknowledged value), writes fail while etcd
// is down, and succeed again once it is back.
func TestRestartUnderLoad(t *testing.T) {
	srv := etcdtest.Start(t)
	st := open(t, srv.URL("load"))
	l := startLoad(st, 8, 300*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	srv.Stop()
	time.Sleep(500 * time.Millisecond)
	srv.Restart()
	l.fault.Store(true)
	l.finish(t, st, 15*time.Second)
	if l.failed.Load() == 0 {
		t.Fatal("no write failed while etcd was down: the test did not test")
	}
}

// load is writers writing increasing values to their own keys (w0, w1,
// …), half synchronously, half through SetAsync, each with a deadline.
type load struct {
	stop      context.CancelFunc
	wg        sync.WaitGroup
	acked     []atomic.Int64 // each writer's last acknowledged value
	failed    atomic.Int64
	fault     atomic.Bool  // set once the fault is injected
	recovered atomic.Int64 // writes acknowledged after it
	late      atomic.Int64 // writes that returned far past their deadline
}

func startLoad(st *etcdstore.Store, writers int, deadline time.Duration) *load {
	ctx, stop := context.WithCancel(context.Background())
	l := &load{stop: stop, acked: make([]atomic.Int64, writers)}
	for w := range writers {
		l.wg.Go(func() {
			key := fmt.Sprint("w", w)
			for i := int64(1); ctx.Err() == nil; i++ {
				wctx, cancel := context.WithTimeout(ctx, deadline)
				start := time.Now()
				v := json.RawMessage(fmt.Sprint(i))
				var err error
				if w%2 == 0 {
					err = st.Set(wctx, "app", key, v)
				} else {
					err = st.SetAsync(wctx, "app", key, v)()
				}
				cancel()
				if time.Since(start) > 3*deadline {
					l.late.Add(1)
				}
				if err != nil {
					l.failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				l.acked[w].Store(i)
				if l.fault.Load() {
					l.recovered.Add(1)
				}
			}
		})
	}
	return l
}

// finish waits (up to within) for 100 writes to succeed after the fault,
// stops the writers, and checks that they recovered, kept to their
// deadlines, and that every acknowledged value is in the store.
func (l *load) finish(t *testing.T, st *etcdstore.Store, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for l.recovered.Load() < 100 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	l.stop()
	l.wg.Wait()
	if l.recovered.Load() < 100 {
		t.Fatalf("%d writes succeeded after the fault, want the writers to recover", l.recovered.Load())
	}
	if l.late.Load() > 0 {
		t.Errorf("%d writes returned long past their deadline", l.late.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := st.List(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	for w := range l.acked {
		got, _ := strconv.ParseInt(string(all[fmt.Sprint("w", w)]), 10, 64)
		if got < l.acked[w].Load() {
			t.Errorf("w%d = %d, but %d was acknowledged: an acknowledged write was lost", w, got, l.acked[w].Load())
		}
	}
}

// An etcd with authentication: the user and password from the URL or
// $MODRUN_ETCD_PASSWORD work, a wrong password fails without showing it.
func TestAuthentication(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, step := range []func() error{
		func() error { _, err := raw.RoleAdd(ctx, "root"); return err },
		func() error { _, err := raw.UserAdd(ctx, "root", "pw-Secret-42"); return err },
		func() error { _, err := raw.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := raw.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	u := "etcd://root:pw-Secret-42@" + srv.Endpoint + "/auth"
	st := open(t, u)
	if err := st.Set(ctx, "app", "k", json.RawMessage(`1`)); err != nil {
		t.Fatalf("with the password in the URL: %v", err)
	}
	t.Setenv("MODRUN_ETCD_PASSWORD", "pw-Secret-42")
	fromEnv := open(t, "etcd://root@"+srv.Endpoint+"/auth")
	if v, err := fromEnv.Get(ctx, "app", "k"); err != nil || string(v) != "1" {
		t.Fatalf("with $MODRUN_ETCD_PASSWORD: %s, %v", v, err)
	}
	t.Setenv("MODRUN_ETCD_PASSWORD", "")
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	bad, err := etcdstore.Open("etcd://root:wrong-Secret-99@" + srv.Endpoint + "/auth")
	if err == nil {
		defer bad.Close()
		_, err = bad.Get(wctx, "app", "k")
	}
	if err == nil {
		t.Fatal("a wrong password worked")
	}
	if strings.Contains(err.Error(), "wrong-Secret-99") || !strings.Contains(err.Error(), srv.Endpoint) {
		t.Fatalf("wrong password: %v; want an error naming the endpoint, not the password", err)
	}
}

// etcds://: TLS with the CA, client certificate and key from the
// environment; without the CA the server is not trusted.
func TestTLS(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Setenv("MODRUN_ETCD_CA", files.CA)
	t.Setenv("MODRUN_ETCD_CERT", files.Cert)
	t.Setenv("MODRUN_ETCD_KEY", files.Key)
	st := open(t, srv.URL("tls"))
	if err := st.Set(ctx, "app", "k", json.RawMessage(`"over tls"`)); err != nil {
		t.Fatalf("etcds:// with the CA and a client certificate: %v", err)
	}
	if v, err := st.Get(ctx, "app", "k"); err != nil || string(v) != `"over tls"` {
		t.Fatalf("Get = %s, %v", v, err)
	}
	// Plain etcd:// to a TLS-only listener fails, naming the endpoint.
	t.Setenv("MODRUN_ETCD_CA", "")
	t.Setenv("MODRUN_ETCD_CERT", "")
	t.Setenv("MODRUN_ETCD_KEY", "")
	plain := open(t, "etcd://"+srv.Endpoint+"/tls")
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	defer pcancel()
	if _, err := plain.Get(pctx, "app", "k"); err == nil || !strings.Contains(err.Error(), srv.Endpoint) {
		t.Fatalf("etcd:// to a TLS listener: %v; want an error naming %s", err, srv.Endpoint)
	}
}

// TestLeaderChange: a three-member cluster loses its leader under write
// load. Writes keep to their deadline while the cluster elects another,
// recover on their own, and every acknowledged value survives.
func TestLeaderChange(t *testing.T) {
	members := etcdtest.StartCluster(t, 3)
	st := open(t, "etcd://"+etcdtest.Endpoints(members)+"/leader")
	l := startLoad(st, 6, 500*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	raw, err := clientv3.New(clientv3.Config{Endpoints: []string{members[0].Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var leader *etcdtest.Server
	for _, m := range members {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := raw.Status(sctx, m.Endpoint)
		cancel()
		if err == nil && resp.Leader == resp.Header.MemberId {
			leader = m
		}
	}
	if leader == nil {
		t.Fatal("no member says it leads")
	}
	leader.Stop()
	l.fault.Store(true)
	l.finish(t, st, 20*time.Second)
}

// Many large values queued at once: each batch stays under etcd's request
// limit, so every write commits.
func TestSetAsyncLargeValues(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	st := open(t, srv.URL("large"))
	big := json.RawMessage(`"` + strings.Repeat("x", 700<<10) + `"`)
	var waits []func() error
	for i := range 6 {
		waits = append(waits, st.SetAsync(ctx, "app", fmt.Sprint("big", i), big))
	}
	for i, w := range waits {
		if err := w(); err != nil {
			t.Fatalf("write %d of 700 KiB: %v", i, err)
		}
	}
	all, err := st.List(ctx, "app")
	if err != nil || len(all) != 6 {
		t.Fatalf("%d values, %v", len(all), err)
	}
}

// TestPasswordsWithAnyCharacter: a password holding "/", "@" or ":", raw
// or percent-encoded, parses whole and never shows in an error or in the
// store's name (issue 28: one with "/" showed partly in errors).
func TestPasswordsWithAnyCharacter(t *testing.T) {
	for _, c := range []struct{ url, pass string }{
		{"etcd://user:pa/ss@127.0.0.1:2379/p", "pa/ss"},
		{"etcd://user:pa%2Fss@127.0.0.1:2379/p", "pa/ss"},
		{"etcd://user:p@ss:w0rd@127.0.0.1:2379/p", "p@ss:w0rd"},
		{"etcd://user:p%40ss@127.0.0.1:2379/p", "p@ss"},
	} {
		cfg, err := etcdstore.ParseURL(c.url)
		if err != nil || cfg.Password != c.pass || cfg.Username != "user" || cfg.Prefix != "/p" || cfg.Endpoints[0] != "127.0.0.1:2379" {
			t.Errorf("ParseURL(%q) = %+v, %v", c.url, cfg, err)
		}
		if strings.Contains(cfg.String(), "ss") {
			t.Errorf("the store's name %q shows the password", cfg.String())
		}
	}
	for _, u := range []string{"etcd://user:pa/ss@nohostport/p", "etcd://user:pa/ss@h:1,/p"} {
		if _, err := etcdstore.ParseURL(u); err == nil || strings.Contains(err.Error(), "pa") || strings.Contains(err.Error(), "ss") {
			t.Errorf("ParseURL(%q): error %v shows the password (or no error)", u, err)
		}
	}
}

// TestPrefixesDoNotNest: the store of prefix a never sees, lists or
// clears another's (issue 28: tenantA listed and cleared tenantA/kv/x): a
// prefix that would reach into a shorter one's ranges is refused, and a/b
// and a keep apart. Stores open by URL through engine.OpenStore.
func TestPrefixesDoNotNest(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	open := func(prefix string) engine.Store {
		st, err := engine.OpenStore(ctx, srv.URL(prefix))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	for _, bad := range []string{"tenantA/kv/x", "tenantA/locks", "kv"} {
		if _, err := engine.OpenStore(ctx, srv.URL(bad)); err == nil || !strings.Contains(err.Error(), "would reach into") {
			t.Errorf("prefix %s: %v", bad, err)
		}
	}
	a, nested := open("tenantA"), open("tenantA/x")
	if err := nested.Set(ctx, "x", "k", json.RawMessage(`"b's"`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, "x", "k", json.RawMessage(`"a's"`)); err != nil {
		t.Fatal(err)
	}
	if all, err := a.List(ctx, "x"); err != nil || len(all) != 1 || string(all["k"]) != `"a's"` {
		t.Fatalf("tenantA's app x lists %v, %v", all, err)
	}
	a.Clear(ctx, "x")
	if v, err := nested.Get(ctx, "x", "k"); err != nil || string(v) != `"b's"` {
		t.Fatalf("tenantA/x after tenantA cleared x: %s, %v", v, err)
	}
}
