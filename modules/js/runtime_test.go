package js_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/store"
)

func TestPromiseAllOverThreeQueries(t *testing.T) {
	srv := newTokenServer(t)
	pkg := load(t, map[string]string{
		"a.query.yaml": "url: <<inputs.baseUrl>>/a\n",
		"b.query.yaml": "url: <<inputs.baseUrl>>/b\n",
		"c.query.yaml": "url: <<inputs.baseUrl>>/c\n",
		"m.js": `export default {
	async all() {
		const [x, y, z] = await Promise.all([a.run(), b.run(), c.run()]);
		return [x.path, y.path, z.path, a.data.path, c.responseMeta.statusCode];
	},
	legacy() {
		return new Promise((resolve) => b.run((data, meta) => resolve([data.path, meta.statusCode]), (e) => resolve("error")));
	},
};`})
	inst := newInstance(t, pkg, openStore(t), map[string]any{"baseUrl": srv.URL})
	if got := call(t, inst, "m.all"); got != `["/a","/b","/c","/a",200]` {
		t.Fatalf("Promise.all: %s", got)
	}
	if got := call(t, inst, "m.legacy"); got != `["/b",200]` {
		t.Fatalf("legacy run(onSuccess, onError): %s", got)
	}
}

// TestTimersCountFromTheJobStart: timers set in one job fire in the
// order of their delays even when the job is held up between the calls,
// as on a loaded machine (CI saw t20 before t0): delays count from when
// the job began, as Node.js counts from its loop's cached time.
func TestTimersCountFromTheJobStart(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
	held() {
		const seen = [];
		return new Promise((resolve) => {
			setTimeout(() => seen.push("t20"), 20);
			const until = Date.now() + 30;
			while (Date.now() < until) {} // the job held up past the first timer's delay
			setTimeout(() => seen.push("t0"), 0);
			setTimeout(() => resolve(seen), 40);
		});
	},
};`})
	inst := newInstance(t, pkg, openStore(t), nil)
	if got := call(t, inst, "m.held"); got != `["t0","t20"]` {
		t.Fatalf("timer order: %s", got)
	}
}

func TestTimersAndStoreSemantics(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
	order() {
		const seen = [];
		return new Promise((resolve) => {
			setTimeout(() => seen.push("t20"), 20);
			setTimeout(() => { seen.push("t40"); resolve(seen); }, 40);
			setTimeout(() => seen.push("t0"), 0);
			const id = setTimeout(() => seen.push("cleared"), 10);
			clearTimeout(id);
			Promise.resolve().then(() => seen.push("microtask"));
			seen.push("sync");
		});
	},
	interval() {
		let n = 0;
		return new Promise((resolve) => {
			const id = setInterval(() => { n++; if (n === 3) { clearInterval(id); resolve(n); } }, 1);
		});
	},
	async zeroInterval() {
		// A delay of 0 is 1 ms, as in Node.js: not a spin.
		let n = 0;
		const id = setInterval(() => n++, 0);
		await new Promise((r) => setTimeout(r, 50));
		clearInterval(id);
		return n;
	},
	storeNoAwait() {
		storeValue("a", {x: 1});
		const seenBefore = appsmith.store.a;
		storeValue("s", "session only", false);
		return [seenBefore, appsmith.store.s, Object.keys(appsmith.store).sort()];
	},
	async removeAndClear() {
		await storeValue("r", 1);
		await removeValue("r");
		const afterRemove = appsmith.store.r;
		await storeValue("q", 2, false);
		await clearStore();
		return [afterRemove === undefined, Object.keys(appsmith.store).length];
	},
	assign() { appsmith.store.x = 1; },
	storeFunction() { return storeValue("f", () => 1); },
	storeNested() { return storeValue("n", {ok: 1, fn() {}}); },
	storeCycle() { const o = {}; o.self = o; return storeValue("c", o); },
	storeBigInt() { return storeValue("b", 10n); },
};`})
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	inst := newInstance(t, pkg, db, nil)
	if got := call(t, inst, "m.order"); got != `["sync","microtask","t0","t20","t40"]` {
		t.Fatalf("timer order: %s", got)
	}
	if got := call(t, inst, "m.interval"); got != `3` {
		t.Fatalf("interval: %s", got)
	}
	// 50 ms at 1 ms apart: at most about 50 firings (a spin makes thousands).
	if n, _ := strconv.Atoi(call(t, inst, "m.zeroInterval")); n < 1 || n > 60 {
		t.Fatalf("setInterval(f, 0) fired %d times in 50 ms", n)
	}
	if got := call(t, inst, "m.storeNoAwait"); got != `[{"x":1},"session only",["a","s"]]` {
		t.Fatalf("store without await: %s", got)
	}
	for fn, want := range map[string]string{
		"m.assign":        "appsmith.store is read-only: use storeValue(\"x\", value)",
		"m.storeFunction": `storeValue("f"): a function cannot be stored`,
		"m.storeNested":   `a function cannot be stored (at key "fn")`,
		"m.storeCycle":    `storeValue("c"): the value is not JSON-serialisable`,
		"m.storeBigInt":   `storeValue("b"): the value is not JSON-serialisable`,
	} {
		_, err := inst.Call(context.Background(), fn)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", fn, err, want)
		}
	}
	// persist=false never reaches the file: close everything and reopen.
	inst.Close()
	db.Close()
	db2, err := store.Open(filepath.Join(dir, "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := db2.List(context.Background(), "test")
	if _, ok := all["s"]; ok || string(all["a"]) != `{"x":1}` {
		t.Fatalf("on disk after close: %v", all)
	}
	inst2 := newInstance(t, pkg, db2, nil)
	if got := call(t, inst2, "m.removeAndClear"); got != `[true,0]` {
		t.Fatalf("removeValue/clearStore: %s", got)
	}
	db2.Close()
}

func TestModuleVariablesPerInstance(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
	count: 0,
	inc() { return ++this.count; },
	incArrow: () => 0,
};`})
	st := store.NewMemory()
	a, b := newInstance(t, pkg, st, nil), newInstance(t, pkg, st, nil)
	call(t, a, "m.inc")
	call(t, a, "m.inc")
	if got := call(t, a, "m.inc"); got != "3" {
		t.Fatalf("instance a: %s", got)
	}
	if got := call(t, b, "m.inc"); got != "1" {
		t.Fatalf("instance b shares a's variables: %s", got)
	}
}

func TestSyntaxErrorsAndImports(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"export default {\n  a() {\n    return 1 +;\n  },\n};", "m.js:3:15: Unexpected token ;"},
		{"import x from 'y';\nexport default {};", "m.js:1:1: import is not supported"},
		{"export const a = 1;\nexport default {};", "m.js:1:1: named exports are not supported"},
		{"export default {};\nexport default {};", "m.js:2:1: a second export default"},
		{"const x = 1;", "m.js: no export default"},
		{"export default {\n  s: 'caf\xe9',\n};", "m.js:2: not valid UTF-8"}, // Latin-1, say
		{"// export default {}\nconst s = 'export default';\nexport default { s };", ""},
	} {
		_, err := packages.Load(map[string][]byte{
			"package.yaml": []byte("name: t\nversion: 1.0.0\n"),
			"m.js":         []byte(tc.src),
		}, js.Kind{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.src, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q:\n got %v\nwant %q", tc.src, err, tc.want)
		}
	}
}

func TestDeadlines(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
	spin() { while (true) {} },
	async spinAfterAwait() { await new Promise(r => setTimeout(r, 5)); while (true) {} },
	wait() { return new Promise(r => setTimeout(r, 60000)); },
	never() { return new Promise(() => {}); },
	recurse() { const f = (n) => f(n + 1) + 1; return f(0); },
	ok() { return "fine"; },
	count: 0,
	inc() { return ++this.count; },
};`})
	st := store.NewMemory()
	inst := js.NewInstance(pkg, js.Options{Store: st, Timeout: 200 * time.Millisecond})
	defer inst.Close()
	call(t, inst, "m.inc")
	start := time.Now()
	_, err := inst.Call(context.Background(), "m.never")
	// Found at once, not at the 200 ms deadline (whose error says so): the
	// message is the check; no wall-clock margin.
	if err == nil || !strings.Contains(err.Error(), "can never settle") {
		t.Errorf("a promise that cannot settle: %v after %s", err, time.Since(start))
	}
	for _, fn := range []string{"m.spin", "m.spinAfterAwait", "m.wait"} {
		start := time.Now()
		_, err := inst.Call(context.Background(), fn)
		late := time.Since(start) - 200*time.Millisecond
		if !errors.Is(err, engine.ErrDeadline) {
			t.Errorf("%s: err = %v, want ErrDeadline", fn, err)
		}
		// Answered at the deadline, not whenever the JS would stop (for
		// ever): a loaded machine may add scheduling delay, not seconds.
		if late > 2*time.Second {
			t.Errorf("%s: stopped %s after the deadline", fn, late)
		}
		// The instance still works; a discarded runtime starts afresh.
		if got := call(t, inst, "m.ok"); got != `"fine"` {
			t.Fatalf("after %s: %s", fn, got)
		}
	}
	if got := call(t, inst, "m.inc"); got != "1" {
		t.Errorf("after an interrupt the runtime should be new (module variables reset): %s", got)
	}
	// The stack's limit, not the deadline, stops a recursion: on its own
	// instance with a deadline a loaded machine cannot reach first.
	deep := js.NewInstance(pkg, js.Options{Store: st, Timeout: time.Minute})
	defer deep.Close()
	_, err = deep.Call(context.Background(), "m.recurse")
	if err == nil || !strings.Contains(err.Error(), "maximum call stack size") {
		t.Errorf("unbounded recursion: %v", err)
	}
	if got := call(t, deep, "m.ok"); got != `"fine"` {
		t.Fatalf("after a stack overflow: %s", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := inst.Call(ctx, "m.spin"); err == nil {
		t.Error("the caller's shorter deadline was not honoured")
	}
}

func TestConcurrentRunsAcrossInstances(t *testing.T) {
	srv := newTokenServer(t)
	pkg := load(t, map[string]string{"refreshAPI.query.yaml": refreshQuery, "m.js": `export default {
	n: 0,
	async run(i) {
		const tok = await refreshAPI.run({ refreshtoken: "rt-" + i });
		await storeValue("k" + i, tok.echo.refresh_token, false);
		this.n++;
		return appsmith.store["k" + i];
	},
};`})
	st := openStore(t)
	var insts []*js.Instance
	for range 8 {
		insts = append(insts, newInstance(t, pkg, st, map[string]any{"baseUrl": srv.URL}))
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := insts[i%8].Call(context.Background(), "m.run", json.RawMessage(fmt.Sprint(i)))
			if err != nil || string(out) != fmt.Sprintf(`"rt-%d"`, i) {
				t.Errorf("run %d: %s, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
}

func TestOnLoad(t *testing.T) {
	mk := func(onLoad, src string) *engine.Package {
		pkg, err := packages.Load(map[string][]byte{
			"package.yaml": []byte("name: t\nversion: 1.0.0\nonLoad: " + onLoad + "\n"),
			"m.js":         []byte(src),
		}, js.Kind{})
		if err != nil {
			t.Fatal(err)
		}
		return pkg
	}
	pkg := mk("[m.first, m.second]", `export default {
	log: [],
	first() { this.log.push("first"); },
	async second() { await new Promise(r => setTimeout(r, 10)); this.log.push("second"); },
	target() { this.log.push("target"); return this.log; },
};`)
	inst := js.NewInstance(pkg, js.Options{Store: store.NewMemory()})
	defer inst.Close()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := inst.Call(context.Background(), "m.target")
			if err != nil || !strings.HasPrefix(string(out), `["first","second","target"`) {
				t.Errorf("onLoad must finish before any call: %s %v", out, err)
			}
		}()
	}
	wg.Wait()
	if got := call(t, inst, "m.target"); got != `["first","second","target","target","target","target"]` {
		t.Errorf("onLoad ran again: %s", got)
	}

	failing := mk("[m.boom]", `export default { async boom() { throw new Error("no session"); }, target() { return 1; } };`)
	inst2 := js.NewInstance(failing, js.Options{Store: store.NewMemory()})
	defer inst2.Close()
	_, err := inst2.Call(context.Background(), "m.target")
	if err == nil || !strings.Contains(err.Error(), "onLoad m.boom") || !strings.Contains(err.Error(), "no session") {
		t.Fatalf("failing onLoad: %v", err)
	}
}

func TestProtoKeyIsData(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
	check(o) { return [Object.getPrototypeOf(o) === Object.prototype, o.__proto__ === undefined ? "lost" : typeof o.__proto__, Object.keys(o)]; },
};`})
	inst := newInstance(t, pkg, store.NewMemory(), nil)
	got := call(t, inst, "m.check", `{"__proto__": {"polluted": true}, "a": 1}`)
	if !strings.HasPrefix(got, `[true,`) || !strings.Contains(got, `"__proto__"`) {
		t.Fatalf("a __proto__ key must stay data: %s", got)
	}
}

// TestSingleFlightLeaderThatNeverSettles: a stuck leader must not hold the
// key after its deadline; the next call starts afresh.
func TestSingleFlightLeaderThatNeverSettles(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
	stuck() { return singleFlight("k", () => new Promise(r => setTimeout(r, 60000))); },
	quick() { return singleFlight("k", async () => "fresh"); },
};`})
	inst := js.NewInstance(pkg, js.Options{Store: store.NewMemory(), Timeout: 100 * time.Millisecond})
	defer inst.Close()
	if _, err := inst.Call(context.Background(), "m.stuck"); !errors.Is(err, engine.ErrDeadline) {
		t.Fatalf("stuck: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := call(t, inst, "m.quick"); got != `"fresh"` {
		t.Fatalf("after a stuck leader: %s", got)
	}
}

// TestStoreValueAfterTheRunReturned: JS that a run left running (a timer)
// may write after the run's result was delivered.
func TestStoreValueAfterTheRunReturned(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
	later() { setTimeout(() => storeValue("late", 1), 10); return "now"; },
	read() { return new Promise(r => setTimeout(() => r(appsmith.store.late), 50)); },
};`})
	inst := newInstance(t, pkg, openStore(t), nil)
	if got := call(t, inst, "m.later"); got != `"now"` {
		t.Fatal(got)
	}
	if got := call(t, inst, "m.read"); got != "1" {
		t.Fatalf("the late write: %s", got)
	}
}

func TestQueryDataKinds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/text":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("héllo \"x\""))
		case "/binary":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte{0, 1, 2, 255})
		case "/empty":
			w.Header().Set("Content-Type", "application/json")
		}
	}))
	defer srv.Close()
	pkg := load(t, map[string]string{
		"text.query.yaml":   "url: <<inputs.baseUrl>>/text\n",
		"binary.query.yaml": "url: <<inputs.baseUrl>>/binary\n",
		"empty.query.yaml":  "url: <<inputs.baseUrl>>/empty\n",
		"m.js": `export default {
	async kinds() { return [await text.run(), await binary.run(), await empty.run(), typeof text.data, binary.responseMeta.statusCode]; },
};`})
	inst := newInstance(t, pkg, store.NewMemory(), map[string]any{"baseUrl": srv.URL})
	if got := call(t, inst, "m.kinds"); got != `["héllo \"x\"","AAEC/w==",null,"string",200]` {
		t.Fatalf("data: %s", got)
	}
}

// TestCloseFailsCallsInProgress: Close ends every call in progress at
// once with ErrClosed — one awaiting a request (which is cancelled), one
// in a sync loop, one awaiting a timer — instead of at their deadlines.
func TestCloseFailsCallsInProgress(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
		cancelled <- struct{}{}
	}))
	defer srv.Close()
	pkg := load(t, map[string]string{
		"api.query.yaml": "url: <<inputs.baseUrl>>/x\ntimeout: 30s\n",
		"m.js": `export default {
	async request() { await api.run(); return 1; },
	spin() { while (true) {} },
	wait() { return new Promise((r) => setTimeout(r, 60000)); },
};`,
	})
	for _, target := range []string{"m.request", "m.spin", "m.wait"} {
		inst := newInstance(t, pkg, store.NewMemory(), map[string]any{"baseUrl": srv.URL})
		done := make(chan error, 1)
		go func() { _, err := inst.Call(context.Background(), target); done <- err }()
		if target == "m.request" {
			<-arrived // the request is at the server
		} else {
			time.Sleep(50 * time.Millisecond) // the call is under way
		}
		inst.Close()
		select {
		case err := <-done:
			if !errors.Is(err, engine.ErrClosed) || !strings.Contains(err.Error(), target+": instance closed") {
				t.Errorf("%s: err = %v, want instance closed", target, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the call still waits 5 s after Close", target)
		}
		if target == "m.request" {
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Error("Close did not cancel the call's request")
			}
		}
		if _, err := inst.Call(context.Background(), target); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("a call after Close: %v", err)
		}
	}
}

// TestConsoleAndAlertsAreRedacted: console.* and showAlert go through the
// instance's logger, which hides every token the instance has seen.
func TestConsoleAndAlertsAreRedacted(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
	async f() {
		await storeValue("accesstoken", "tok-secret-123", false);
		console.log("token is", appsmith.store.accesstoken, { t: appsmith.store.accesstoken });
		showAlert("the token: " + appsmith.store.accesstoken, "info");
	},
};`})
	var buf bytes.Buffer
	in, _ := pkg.ResolveInputs(nil)
	inst := js.NewInstance(pkg, js.Options{Store: store.NewMemory(), Inputs: in, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	defer inst.Close()
	call(t, inst, "m.f")
	out := buf.String()
	if strings.Contains(out, "tok-secret-123") || strings.Count(out, "[REDACTED]") != 3 {
		t.Fatalf("log:\n%s", out)
	}
}

// TestQueryTargetKeepsLargeIntegers: a query run as a target answers its
// JSON body as sent: an id past 2^53 keeps its digits (a JS number would
// make 9007199254740993 …992). A function returning the data has JS's
// numbers, as in Appsmith.
func TestQueryTargetKeepsLargeIntegers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id": 9007199254740993, "n": [1.5, 12345678901234567890]}`))
	}))
	defer srv.Close()
	pkg := load(t, map[string]string{
		"big.query.yaml": "url: <<inputs.baseUrl>>/big\n",
		"m.js":           `export default { async f() { return big.run() } }`,
	})
	inst := newInstance(t, pkg, openStore(t), map[string]any{"baseUrl": srv.URL})
	if got := call(t, inst, "big"); got != `{"id":9007199254740993,"n":[1.5,12345678901234567890]}` {
		t.Fatalf("query target: %s", got)
	}
	if got := call(t, inst, "m.f"); got != `{"id":9007199254740992,"n":[1.5,12345678901234567000]}` {
		t.Fatalf("function: %s", got)
	}
}

// TestUndefinedFieldsAreLeftOut: a query parameter, header or form field
// whose binding is undefined (a key not given, not stored) is left out,
// not sent empty (issue 32: the first page of a paginated API got
// starting_after= and was rejected); null is still sent empty.
func TestUndefinedFieldsAreLeftOut(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got = append(got, r.URL.RawQuery+" trace="+strconv.Quote(r.Header.Get("X-Trace"))+" has-trace="+strconv.FormatBool(len(r.Header.Values("X-Trace")) > 0)+" form="+r.PostForm.Encode())
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	pkg := load(t, map[string]string{
		"page.query.yaml": "url: <<inputs.baseUrl>>/items\nquery: {starting_after: <<this.params.cursor>>, limit: <<this.params.limit>>, saved: <<appsmith.store.notYetSet>>}\nheaders: {X-Trace: <<this.params.trace>>}\n",
		"post.query.yaml": "method: POST\nurl: <<inputs.baseUrl>>/items\nbody:\n  form: {a: <<this.params.a>>, b: <<this.params.b>>}\n",
		"m.js":            `export default { async go() { await page.run({limit: 10}); await page.run({cursor: null, limit: 5, trace: "t1"}); await post.run({b: "x"}); return 1 } }`,
	})
	inst := newInstance(t, pkg, openStore(t), map[string]any{"baseUrl": srv.URL})
	call(t, inst, "m.go")
	want := []string{
		`limit=10 trace="" has-trace=false form=`,
		`starting_after=&limit=5 trace="t1" has-trace=true form=`,
		` trace="" has-trace=false form=b=x`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestStackFramesAreTheModulesLines: a thrown error's stack names the
// module's file, line and column, without goja's bytecode counter
// (issue 32: "at f (m.js:1:67(3))").
func TestStackFramesAreTheModulesLines(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": "export default {\n  f() {\n    throw new Error(\"boom\");\n  },\n  g() { return this.f() },\n};\n"})
	inst := newInstance(t, pkg, nil, nil)
	_, err := inst.Call(context.Background(), "m.g")
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "at f (m.js:3:") || !strings.Contains(msg, "at g (m.js:5:") {
		t.Fatalf("the stack does not name the lines:\n%s", msg)
	}
	if regexp.MustCompile(`:\d+:\d+\(\d+\)`).MatchString(msg) {
		t.Fatalf("the stack shows goja's counters:\n%s", msg)
	}
}

// TestRunQuotas: one run may write 1 MiB of log and 10 MiB to the store;
// past that its console lines are dropped (one line says so) and
// storeValue throws, and the next run has its own quota (issue 28: one
// run wrote 300 MB of log, another 357 MB of store).
func TestRunQuotas(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
	chatty() { const line = "x".repeat(1000); for (let i = 0; i < 5000; i++) console.log(line); return 1 },
	async hoard() { const v = "y".repeat(900000); for (let i = 0; i < 20; i++) await storeValue("k" + i, v); return 1 },
	async small() { await storeValue("s", 1); console.log("ok"); return 2 },
}`})
	var logs bytes.Buffer
	var mu sync.Mutex
	st := openStore(t)
	in, _ := pkg.ResolveInputs(nil)
	inst := js.NewInstance(pkg, js.Options{Store: st, Inputs: in, Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	defer inst.Close()
	call(t, inst, "m.chatty")
	mu.Lock()
	n, dropped := logs.Len(), strings.Contains(logs.String(), "log quota")
	mu.Unlock()
	if n > 2*js.MaxRunLog || !dropped {
		t.Fatalf("a run logging 5 MB wrote %d bytes of log (quota note: %v)", n, dropped)
	}
	_, err := inst.Call(context.Background(), "m.hoard")
	if err == nil || !strings.Contains(err.Error(), "more than 10 MiB to the store") {
		t.Fatalf("a run storing 18 MB: %v", err)
	}
	if got := call(t, inst, "m.small"); got != "2" {
		t.Fatalf("the next run: %s", got)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestAppsmithIntervalIDs: setInterval(fn, ms, "id") names the interval
// (the id is not an argument of fn), clearInterval("id") stops it, and a
// second setInterval with the id replaces the first (issue 30).
func TestAppsmithIntervalIDs(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
		async f() {
			let a = 0, b = 0, seen;
			setInterval((x) => { a++; seen = x }, 1, "poll");
			await new Promise(r => setTimeout(r, 20));
			let third;
			const three = new Promise(r => third = r);
			setInterval(() => { b++; if (b === 3) { clearInterval("poll"); third() } }, 1, "poll"); // replaces the first
			const frozen = a;
			await three; // however slow the machine
			await new Promise(r => setTimeout(r, 20));
			return [seen === undefined, a === frozen, b === 3];
		},
	}`})
	inst := js.NewInstance(pkg, js.Options{})
	defer inst.Close()
	out, err := inst.Call(context.Background(), "m.f")
	if err != nil || string(out) != "[true,true,true]" {
		t.Fatalf("%s %v; want [true,true,true]: the id is no argument, the first interval replaced, the second cleared", out, err)
	}
}

// TestQueryClear: Appsmith's Query.clear() forgets the last response.
func TestQueryClear(t *testing.T) {
	srv := newTokenServer(t)
	pkg := load(t, map[string]string{
		"a.query.yaml": "url: <<inputs.baseUrl>>/a\n",
		"m.js": `export default {
	async f() {
		await a.run();
		const before = [a.data.path, a.responseMeta.statusCode];
		await a.clear();
		return [before, a.data === undefined, a.responseMeta === undefined];
	},
};`})
	inst := newInstance(t, pkg, openStore(t), map[string]any{"baseUrl": srv.URL})
	if got := call(t, inst, "m.f"); got != `[["/a",200],true,true]` {
		t.Fatalf("clear: %s", got)
	}
}
