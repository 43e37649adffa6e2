package oauth2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	"github.com/go-oauth2/oauth2/v4/server"
	oauthstore "github.com/go-oauth2/oauth2/v4/store"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/etcdstore"
	"github.com/modrun/modrun/internal/etcdtest"
	"github.com/modrun/modrun/internal/oauth2"
	"github.com/modrun/modrun/seal"
	"github.com/modrun/modrun/store"
)

// authServer is go-oauth2's server with client_credentials, password and
// rotating refresh tokens, a resource at /me, and counts: token requests
// by grant, and reuses of a spent refresh token.
type authServer struct {
	*httptest.Server
	manager  *manage.Manager
	grants   sync.Map // grant → *atomic.Int64
	spent    sync.Map // refresh tokens already used
	reuses   atomic.Int64
	slowdown time.Duration
}

func (a *authServer) count(grant string) int64 {
	v, _ := a.grants.LoadOrStore(grant, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func newAuthServer(t *testing.T) *authServer {
	manager := manage.NewDefaultManager()
	manager.MustTokenStorage(oauthstore.NewMemoryTokenStore())
	clients := oauthstore.NewClientStore()
	clients.Set("modrun-client", &models.Client{ID: "modrun-client", Secret: "client-secret-xyz", Domain: "http://127.0.0.1"})
	manager.MapClientStorage(clients)
	cfg := &manage.Config{AccessTokenExp: time.Hour, RefreshTokenExp: 24 * time.Hour, IsGenerateRefresh: true}
	manager.SetPasswordTokenCfg(cfg)
	manager.SetClientTokenCfg(&manage.Config{AccessTokenExp: time.Hour})
	manager.SetRefreshTokenCfg(&manage.RefreshingConfig{IsGenerateRefresh: true, IsRemoveAccess: true, IsRemoveRefreshing: true})
	srv := server.NewDefaultServer(manager)
	srv.SetClientInfoHandler(server.ClientBasicHandler)
	srv.SetPasswordAuthorizationHandler(func(ctx context.Context, clientID, username, password string) (string, error) {
		if username == "ada" && password == "ada-password-1" {
			return "user-ada", nil
		}
		return "", errors.ErrAccessDenied
	})
	a := &authServer{manager: manager, slowdown: 50 * time.Millisecond}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			r.ParseForm()
			g := r.PostForm.Get("grant_type")
			v, _ := a.grants.LoadOrStore(g, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			if g == "refresh_token" {
				if _, used := a.spent.LoadOrStore(r.PostForm.Get("refresh_token"), true); used {
					a.reuses.Add(1)
				}
				time.Sleep(a.slowdown) // concurrent callers surely overlap
			}
			srv.HandleTokenRequest(w, r)
		case "/me":
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if _, err := manager.LoadAccessToken(r.Context(), tok); err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"me": "ada"}`)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

// credPackage writes a package whose queries use both credentials.
func credPackage(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"package.yaml": `name: creds
version: 1.0.0
inputs:
  baseUrl: {}
  clientSecret: {secret: true}
oauth2:
  svc: {grant: client_credentials, tokenUrl: "<<inputs.baseUrl>>/token", clientId: modrun-client, clientSecret: "<<inputs.clientSecret>>", scopes: [read]}
  user: {grant: password, tokenUrl: "<<inputs.baseUrl>>/token", clientId: modrun-client, clientSecret: "<<inputs.clientSecret>>", username: ada, password: ada-password-1}
`,
		"me.query.yaml":  "url: <<inputs.baseUrl>>/me\nauth: {oauth2: user}\n",
		"raw.query.yaml": "url: <<inputs.baseUrl>>/me\nheaders: {Authorization: \"Bearer <<this.params.token>>\"}\n",
		"js.js": `export default {
	async viaJS() {
		const t = await oauth2.user.accessToken();
		const a = await raw.run({ token: t });
		const t2 = await oauth2.user.refresh();
		await oauth2.user.logout();
		return [a.me, t !== t2, appsmith.store["oauth2.user"] === undefined];
	},
	token() { return oauth2.user.accessToken() },
	slowToken() { return new Promise(r => setTimeout(r, 300)).then(() => oauth2.user.accessToken()) },
	shared() {
		return singleFlight("tokens", async () => {
			const t = await oauth2.user.refresh();
			await new Promise(r => setTimeout(r, 300));
			return { access_token: t };
		});
	},
};`,
		"svcme.query.yaml": "url: <<inputs.baseUrl>>/me\nauth: {oauth2: svc}\n",
	}
	for n, d := range files {
		os.WriteFile(filepath.Join(dir, n), []byte(d), 0o644)
	}
	return dir
}

func newEngine(t *testing.T, st engine.Store, a *authServer) (*modrun.Engine, *engine.Package, map[string]any) {
	return newEngineWith(t, modrun.Options{Store: st}, a)
}

// newEngineWith is newEngine with the engine's options given.
func newEngineWith(t *testing.T, opts modrun.Options, a *authServer) (*modrun.Engine, *engine.Package, map[string]any) {
	eng := modrun.New(opts)
	pkg, err := eng.Load(credPackage(t))
	if err != nil {
		t.Fatal(err)
	}
	return eng, pkg, map[string]any{"baseUrl": a.URL, "clientSecret": "client-secret-xyz"}
}

func TestGrantsAndSingleFlight(t *testing.T) {
	a := newAuthServer(t)
	st := store.NewMemory()
	eng, pkg, in := newEngine(t, st, a)
	inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	ctx := context.Background()
	for _, q := range []string{"svcme", "svcme", "me", "me"} {
		if out, err := inst.Call(ctx, q); err != nil || string(out) != `{"me":"ada"}` {
			t.Fatalf("%s: %s, %v", q, out, err)
		}
	}
	if a.count("client_credentials") != 1 || a.count("password") != 1 {
		t.Fatalf("token requests: client_credentials %d, password %d; want 1 each (then cached)", a.count("client_credentials"), a.count("password"))
	}
	raw, _ := st.Get(ctx, "creds", "oauth2.user")
	var set oauth2.Set
	json.Unmarshal(raw, &set)
	if set.AccessToken == "" || set.RefreshToken == "" || set.ExpiresAt < time.Now().UnixMilli() {
		t.Fatalf("stored set %s", raw)
	}

	// 50 concurrent calls with an expired token: one refresh.
	set.ExpiresAt = time.Now().Add(-time.Minute).UnixMilli()
	expired, _ := json.Marshal(set)
	st.Set(ctx, "creds", "oauth2.user", expired)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := inst.Call(ctx, "me"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := a.count("refresh_token"); n != 1 {
		t.Fatalf("%d refresh requests for 50 concurrent calls; want 1", n)
	}

	// A 401 with a token the server revoked: one refresh, one retry.
	raw, _ = st.Get(ctx, "creds", "oauth2.user")
	json.Unmarshal(raw, &set)
	a.manager.RemoveAccessToken(ctx, set.AccessToken)
	if out, err := inst.Call(ctx, "me"); err != nil || string(out) != `{"me":"ada"}` {
		t.Fatalf("after a revocation: %s, %v", out, err)
	}
	if n := a.count("refresh_token"); n != 2 {
		t.Fatalf("%d refresh requests after the revocation; want 2", n)
	}
	if a.reuses.Load() != 0 {
		t.Fatalf("%d refresh-token reuses", a.reuses.Load())
	}
}

// peerStore hands out a stale token set on its first read, as if a peer
// rotated the refresh token just after this process read it.
type peerStore struct {
	st    engine.Store
	stale json.RawMessage
	reads atomic.Int64
}

// Get hands out the stale set on the client's first two reads (before it
// decides to refresh, and as its leader), so the token request spends the
// refresh token the peer already spent.
func (p *peerStore) Get(ctx context.Context, key string) (json.RawMessage, error) {
	if key == "oauth2.user" && p.reads.Add(1) <= 2 {
		return p.stale, nil
	}
	return p.st.Get(ctx, "creds", key)
}

func (p *peerStore) CompareAndSwap(ctx context.Context, key string, old, new json.RawMessage) (bool, error) {
	return p.st.CompareAndSwap(ctx, "creds", key, old, new)
}

// TestInvalidGrantAfterAPeerRotated: the refresh token this process read
// was spent by a peer meanwhile: invalid_grant, the store re-read, the
// peer's token used, nothing removed.
func TestInvalidGrantAfterAPeerRotated(t *testing.T) {
	a := newAuthServer(t)
	st := store.NewMemory()
	eng, pkg, in := newEngine(t, st, a)
	inst, _ := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: in})
	ctx := context.Background()
	if _, err := inst.Call(ctx, "me"); err != nil { // password grant: a set with a refresh token
		t.Fatal(err)
	}
	stale, _ := st.Get(ctx, "creds", "oauth2.user")
	var old oauth2.Set
	json.Unmarshal(stale, &old)
	old.ExpiresAt = 1 // expired
	staleRaw, _ := json.Marshal(old)
	// The peer: a second engine (its own flight, as another process has)
	// refreshes with the same refresh token and stores the result.
	st.Set(ctx, "creds", "oauth2.user", staleRaw)
	peer, _ := eng2(t, st, a).NewInstance(pkg, modrun.InstanceOptions{Inputs: in})
	if _, err := peer.Call(ctx, "me"); err != nil {
		t.Fatal(err)
	}
	// This process read the stale set before the peer's write landed.
	c := &oauth2.Client{HTTP: http.DefaultClient, Store: &peerStore{st: st, stale: staleRaw}, App: "creds", Flights: &engine.Flight{}, Package: "creds"}
	spec := engine.TokenSpec{Name: "user", Grant: engine.GrantPassword, TokenURL: a.URL + "/token", ClientID: "modrun-client", ClientSecret: "client-secret-xyz",
		ClientAuth: "basic", Username: "ada", Password: "ada-password-1", Margin: 30 * time.Second}
	tok, err := c.Token(ctx, spec, "")
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	raw, _ := st.Get(ctx, "creds", "oauth2.user")
	var now oauth2.Set
	json.Unmarshal(raw, &now)
	if tok != now.AccessToken || now.RefreshToken == old.RefreshToken {
		t.Fatalf("used %q; the peer stored %q", tok, now.AccessToken)
	}
	if a.reuses.Load() != 1 {
		t.Fatalf("%d reuses of the spent refresh token; the test means one (answered invalid_grant)", a.reuses.Load())
	}
}

func eng2(t *testing.T, st engine.Store, a *authServer) *modrun.Engine {
	return modrun.New(modrun.Options{Store: st})
}

// TestTokenEndpointFaults: each failure is an error naming the credential
// and nothing is stored.
func TestTokenEndpointFaults(t *testing.T) {
	var answer func(w http.ResponseWriter)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			answer(w)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	for name, c := range map[string]struct {
		answer func(w http.ResponseWriter)
		want   string
	}{
		"500":            {func(w http.ResponseWriter) { w.WriteHeader(500) }, "svc: token request: HTTP 500"},
		"html":           {func(w http.ResponseWriter) { w.Write([]byte("<html>down</html>")) }, "not JSON"},
		"no token":       {func(w http.ResponseWriter) { w.Write([]byte(`{"token_type":"bearer"}`)) }, "no access_token"},
		"mac":            {func(w http.ResponseWriter) { w.Write([]byte(`{"access_token":"x","token_type":"mac"}`)) }, "only bearer"},
		"error in a 200": {func(w http.ResponseWriter) { w.Write([]byte(`{"error":"invalid_client"}`)) }, "invalid_client"},
		"redirect": {func(w http.ResponseWriter) {
			w.Header().Set("Location", "http://127.0.0.1:1/evil")
			w.WriteHeader(302)
		}, "refusing to follow"},
	} {
		t.Run(name, func(t *testing.T) {
			answer = c.answer
			st := store.NewMemory()
			sess := engine.NewSession(st, "creds")
			cl := &oauth2.Client{HTTP: http.DefaultClient, Store: sess, App: "creds", Flights: &engine.Flight{}, Package: "creds"}
			_, err := cl.Token(context.Background(), engine.TokenSpec{Name: "svc", Grant: engine.GrantClientCredentials, TokenURL: srv.URL + "/token",
				ClientID: "id", ClientSecret: "very-secret-value", ClientAuth: "basic"}, "")
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "very-secret-value") {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if _, err := st.Get(context.Background(), "creds", "oauth2.svc"); err == nil {
				t.Fatal("a failed token request was stored")
			}
		})
	}
}

// TestJSAPI: oauth2.NAME.accessToken(), refresh() and logout().
func TestJSAPI(t *testing.T) {
	a := newAuthServer(t)
	st := store.NewMemory()
	eng, pkg, in := newEngine(t, st, a)
	inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	out, err := inst.Call(context.Background(), "js.viaJS")
	if err != nil || string(out) != `["ada",true,true]` {
		t.Fatalf("got %s, %v", out, err)
	}
	if a.count("password") != 1 || a.count("refresh_token") != 1 {
		t.Fatalf("token requests: password %d, refresh %d", a.count("password"), a.count("refresh_token"))
	}
}

// TestSlowTokenEndpoint: a token endpoint slower than the call's deadline
// fails the call at its deadline, naming the credential; nothing stored.
func TestSlowTokenEndpoint(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	st := store.NewMemory()
	cl := &oauth2.Client{HTTP: http.DefaultClient, Store: engine.NewSession(st, "creds"), App: "creds", Flights: &engine.Flight{}, Package: "creds"}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := cl.Token(ctx, engine.TokenSpec{Name: "svc", Grant: engine.GrantClientCredentials, TokenURL: srv.URL, ClientID: "id", ClientSecret: "s-123456", ClientAuth: "basic"}, "")
	if err == nil || !strings.HasPrefix(err.Error(), "svc: token request") || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	if _, err := st.Get(context.Background(), "creds", "oauth2.svc"); err == nil {
		t.Fatal("stored")
	}
}

// TestTwoProcessesOneStore: two runner processes on one store file, both
// calling with an expired token: one refresh, no refresh token spent twice.
func TestTwoProcessesOneStore(t *testing.T) {
	a := newAuthServer(t)
	dir := credPackage(t)
	bin := filepath.Join(t.TempDir(), "runner")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/runner").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	db := filepath.Join(t.TempDir(), "s.db")
	keys := filepath.Join(t.TempDir(), "keys")
	ring, _, err := seal.LoadOrCreate(keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MODRUN_KEYS_FILE", keys) // the runners below seal with it
	var mu sync.Mutex
	var outputs strings.Builder
	run := func() (string, error) {
		out, err := exec.Command(bin, "run", dir, "me", "--store", db, "--input", "baseUrl="+a.URL, "--input", "clientSecret=client-secret-xyz", "--log-level", "debug").CombinedOutput()
		mu.Lock()
		outputs.Write(out)
		mu.Unlock()
		return string(out), err
	}
	if out, err := run(); err != nil { // logs in (password grant)
		t.Fatalf("first run: %v\n%s", err, out)
	}
	// Expire the stored token (runner store refuses token sets: on the
	// store directly, sealed with the runners' keyring).
	bolt, err := store.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := seal.Wrap(bolt, ring)
	expireToken(t, st)
	st.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := run(); err != nil || !strings.Contains(out, `{"me":"ada"}`) {
				t.Errorf("run: %v\n%s", err, out)
			}
		}()
	}
	wg.Wait()
	if a.count("refresh_token") != 1 || a.reuses.Load() != 0 {
		t.Fatalf("%d refreshes, %d reuses; want 1 and 0", a.count("refresh_token"), a.reuses.Load())
	}
	// At --log-level debug, no secret and no token in any output.
	out, _ := exec.Command(bin, "store", "get", "--store", db, "--app", "creds", "oauth2.user", "--reveal").Output()
	var set map[string]any
	json.Unmarshal(out, &set)
	secrets := []string{"client-secret-xyz", "ada-password-1", fmt.Sprint(set["access_token"]), fmt.Sprint(set["refresh_token"])}
	for _, s := range secrets {
		if len(s) > 6 && strings.Contains(outputs.String(), s) {
			t.Errorf("%q in the runs' output:\n%s", s, outputs.String())
		}
	}
	if !strings.Contains(outputs.String(), "level=DEBUG") {
		t.Error("the runs logged nothing at debug: the check saw nothing")
	}
}

// countingLocker is an engine.Locker for the test: it counts, and
// serialises, what it locks.
type countingLocker struct {
	mu    sync.Mutex
	locks atomic.Int64
}

func (l *countingLocker) Lock(ctx context.Context, app, key string) (func(), error) {
	l.mu.Lock()
	l.locks.Add(1)
	return l.mu.Unlock, nil
}

// TestRefreshTakesTheStoresLock: with a store that locks across
// processes, a refresh happens under its lock, once for concurrent calls.
func TestRefreshTakesTheStoresLock(t *testing.T) {
	a := newAuthServer(t)
	st := store.NewMemory()
	l := &countingLocker{}
	cl := &oauth2.Client{HTTP: http.DefaultClient, Store: engine.NewSession(st, "creds"), App: "creds", Flights: &engine.Flight{}, Package: "creds", Locker: l}
	spec := engine.TokenSpec{Name: "svc", Grant: engine.GrantClientCredentials, TokenURL: a.URL + "/token", ClientID: "modrun-client", ClientSecret: "client-secret-xyz", ClientAuth: "basic"}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.Token(context.Background(), spec, ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if l.locks.Load() != 1 || a.count("client_credentials") != 1 {
		t.Fatalf("%d locks, %d token requests; want 1 and 1", l.locks.Load(), a.count("client_credentials"))
	}
}

// TestTwoEnginesOnEtcd: two engines on one etcd, each with its own
// connection (as two servers have), 50 concurrent calls each after the
// access token expired: one token request across both, no reuse of a
// spent refresh token (DESIGN.md §13).
func TestTwoEnginesOnEtcd(t *testing.T) {
	t.Run("in-process", func(t *testing.T) { testTwoEnginesOnEtcd(t, false) })
	// Runs in worker processes (serve's default) take the lock through
	// their server.
	t.Run("isolated", func(t *testing.T) { testTwoEnginesOnEtcd(t, true) })
}

func testTwoEnginesOnEtcd(t *testing.T, isolate bool) {
	srv := etcdtest.Start(t)
	a := newAuthServer(t)
	ctx := context.Background()
	var insts []engine.Instance
	var stores []*etcdstore.Store
	for range 2 {
		st, err := etcdstore.Open(srv.URL("creds"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
		eng, pkg, in := newEngineWith(t, modrun.Options{Store: st, Isolate: isolate, Workers: 2}, a)
		t.Cleanup(func() { eng.Close() })
		inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: in})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { inst.Close() })
		insts = append(insts, inst)
	}
	if _, err := insts[0].Call(ctx, "me"); err != nil { // password grant: a set with a refresh token
		t.Fatal(err)
	}
	expireToken(t, stores[0])
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if out, err := insts[i%2].Call(cctx, "me"); err != nil || string(out) != `{"me":"ada"}` {
				t.Errorf("call %d: %s, %v", i, out, err)
			}
		})
	}
	wg.Wait()
	if a.count("refresh_token") != 1 || a.reuses.Load() != 0 {
		t.Fatalf("%d refreshes, %d reuses; want 1 and 0", a.count("refresh_token"), a.reuses.Load())
	}
}

// TestMain makes this test binary its own worker (for the isolated runs).
func TestMain(m *testing.M) {
	modrun.WorkerMain()
	os.Exit(m.Run())
}

// expireToken marks the stored token set of the user credential expired,
// as time would.
func expireToken(t *testing.T, st engine.Store) {
	t.Helper()
	ctx := context.Background()
	raw, err := st.Get(ctx, "creds", "oauth2.user")
	if err != nil {
		t.Fatal(err)
	}
	var set map[string]any
	json.Unmarshal(raw, &set)
	set["expires_at"] = 1
	expired, _ := json.Marshal(set)
	if err := st.Set(ctx, "creds", "oauth2.user", expired); err != nil {
		t.Fatal(err)
	}
}

// TestFollowersRedactTheTokens: an instance that follows another's token
// refresh (oauth2:) or singleFlight call gets the leader's tokens, and
// must redact them as the leader does (issue 28, findings 1 and 2: they
// came back in clear in results, errors, history and logs).
func TestFollowersRedactTheTokens(t *testing.T) {
	a := newAuthServer(t)
	st := store.NewMemory()
	eng, pkg, in := newEngine(t, st, a)
	ctx := context.Background()
	insts := make([]engine.Instance, 2)
	for i := range insts {
		inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: in})
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close()
		insts[i] = inst
	}
	for _, fn := range []string{"js.shared", "js.token"} {
		// An expired token: the two calls share one refresh.
		st.Delete(ctx, "creds", "oauth2.user")
		outs := make([]string, 2)
		var wg sync.WaitGroup
		for i, inst := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := inst.Call(ctx, fn)
				if err != nil {
					t.Errorf("%s on instance %d: %v", fn, i, err)
					return
				}
				outs[i] = inst.Redact(string(out))
			}()
		}
		wg.Wait()
		raw, _ := st.Get(ctx, "creds", "oauth2.user")
		var set oauth2.Set
		json.Unmarshal(raw, &set)
		if set.AccessToken == "" {
			t.Fatalf("%s: no token stored", fn)
		}
		for i, out := range outs {
			if strings.Contains(out, set.AccessToken) {
				t.Errorf("%s: instance %d answered the access token in clear: %s", fn, i, out)
			}
		}
	}
}

// TestTokenSetBelongsToItsCredential: package B run with A's app never
// sees, spends or replaces A's token set (issue 28, finding 3: it sent
// A's access token to B's URLs, spent A's refresh token at B's token
// endpoint and replaced A's set with the answer).
func TestTokenSetBelongsToItsCredential(t *testing.T) {
	a := newAuthServer(t)
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token": "evil-token", "token_type": "bearer", "expires_in": 3600}`))
	}))
	defer evil.Close()
	st := store.NewMemory()
	eng, pkgA, in := newEngine(t, st, a)
	ctx := context.Background()
	instA, err := eng.NewInstance(pkgA, modrun.InstanceOptions{Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	defer instA.Close()
	if _, err := instA.Call(ctx, "me"); err != nil {
		t.Fatal(err)
	}
	before, _ := st.Get(ctx, "creds", "oauth2.user")

	dirB := t.TempDir()
	os.WriteFile(filepath.Join(dirB, "package.yaml"), []byte(`name: other
version: 1.0.0
inputs:
  baseUrl: {}
oauth2:
  user: {grant: refresh_token, tokenUrl: "<<inputs.baseUrl>>/token", clientId: other-client}
`), 0o644)
	os.WriteFile(filepath.Join(dirB, "me.query.yaml"), []byte("url: <<inputs.baseUrl>>/me\nauth: {oauth2: user}\n"), 0o644)
	os.WriteFile(filepath.Join(dirB, "js.js"), []byte(`export default { t() { return oauth2.user.accessToken() }, out() { return oauth2.user.logout() } }`), 0o644)
	pkgB, err := eng.Load(dirB)
	if err != nil {
		t.Fatal(err)
	}
	instB, err := eng.NewInstance(pkgB, modrun.InstanceOptions{App: "creds", Inputs: map[string]any{"baseUrl": evil.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer instB.Close()
	for _, target := range []string{"me", "js.t", "js.out"} {
		out, err := instB.Call(ctx, target)
		if err == nil || !strings.Contains(err.Error(), "belongs to another package") {
			t.Errorf("package B's %s with A's app: %s, %v; want a refusal", target, out, err)
		}
	}
	if n := evilHits.Load(); n != 0 {
		t.Errorf("package B's servers got %d requests", n)
	}
	after, _ := st.Get(ctx, "creds", "oauth2.user")
	if string(after) != string(before) {
		t.Errorf("A's token set changed:\n%s\n%s", before, after)
	}
	if _, err := instA.Call(ctx, "me"); err != nil {
		t.Fatalf("package A after B's attempts: %v", err)
	}
}

// TestTransientTokenFailuresAreRetried: a token endpoint answering 503
// twice (then 200), or 429 with Retry-After, costs the caller no failure;
// invalid_grant is never retried (issue 29, DESIGN §18).
func TestTransientTokenFailuresAreRetried(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    []int // statuses before the 200
		grant   string
		wantErr string
		want    int // requests
	}{
		{name: "503 twice", fail: []int{503, 503}, grant: engine.GrantClientCredentials, want: 3},
		{name: "429 with Retry-After", fail: []int{429}, grant: engine.GrantClientCredentials, want: 2},
		{name: "502 then 200 on a refresh", fail: []int{502}, grant: engine.GrantRefreshToken, want: 2},
		{name: "invalid_grant", fail: []int{400, 400, 400}, grant: engine.GrantRefreshToken, wantErr: "invalid_grant", want: 1},
		{name: "always 503", fail: []int{503, 503, 503, 503, 503}, grant: engine.GrantClientCredentials, wantErr: "HTTP 503", want: oauth2.MaxTokenAttempts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				w.Header().Set("Content-Type", "application/json")
				if i < len(tc.fail) {
					if tc.fail[i] == 429 {
						w.Header().Set("Retry-After", "1")
					}
					w.WriteHeader(tc.fail[i])
					if tc.fail[i] == 400 {
						w.Write([]byte(`{"error": "invalid_grant"}`))
					}
					return
				}
				w.Write([]byte(`{"access_token": "at-fresh-0123456789", "token_type": "bearer", "expires_in": 3600}`))
			}))
			defer srv.Close()
			st := store.NewMemory()
			ctx := context.Background()
			if tc.grant == engine.GrantRefreshToken {
				set, _ := json.Marshal(oauth2.Set{AccessToken: "old", RefreshToken: "rt-0123456789", ExpiresAt: 1})
				st.Set(ctx, "creds", "oauth2.api", set)
			}
			var logged bytes.Buffer
			cl := &oauth2.Client{HTTP: http.DefaultClient, Store: engine.NewSession(st, "creds"), App: "creds", Flights: &engine.Flight{}, Package: "creds",
				Log: slog.New(slog.NewTextHandler(&logged, nil))}
			spec := engine.TokenSpec{Name: "api", Grant: tc.grant, TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: "secret-0123456789", ClientAuth: "basic"}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			tok, err := cl.Token(cctx, spec, "")
			switch {
			case tc.wantErr == "" && (err != nil || tok != "at-fresh-0123456789"):
				t.Fatalf("token: %q, %v", tok, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("token: %q, %v; want an error with %q", tok, err, tc.wantErr)
			}
			if got := int(n.Load()); got != tc.want {
				t.Fatalf("%d token requests, want %d", got, tc.want)
			}
			// At info, a line per retry and one for the request that
			// succeeded (issue 32); never a secret.
			retries, oks := tc.want-1, 1
			if tc.wantErr != "" {
				oks = 0
			}
			if got := strings.Count(logged.String(), `msg="token request failed; retrying" credential=api grant=`+tc.grant); got != retries {
				t.Errorf("%d retry lines, want %d:\n%s", got, retries, logged.String())
			}
			if got := strings.Count(logged.String(), `msg="token request" credential=api grant=`+tc.grant); got != oks {
				t.Errorf("%d success lines, want %d:\n%s", got, oks, logged.String())
			}
			for _, secret := range []string{"secret-0123456789", "at-fresh-0123456789", "rt-0123456789"} {
				if strings.Contains(logged.String(), secret) {
					t.Errorf("%s in the log:\n%s", secret, logged.String())
				}
			}
		})
	}
}
