package js_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/store"
)

// TestCallReturnsByItsDeadline: whatever the JS does — native calls goja
// cannot interrupt, timers that never let the loop rest — a call returns
// by its deadline (DESIGN §15), and a settled call is not held by timers.
func TestCallReturnsByItsDeadline(t *testing.T) {
	for _, c := range []struct {
		name, src string
		want      string // in the error; "" means the call succeeds
	}{
		{"backtracking regexp", `export default { f() { return /^(a+)+(?!x)b/.test("a".repeat(25)) } }`, "deadline"},
		{"huge repeat", `export default { f() { return 'x'.repeat(2**28).length } }`, "deadline"},
		{"deep stringify", `export default { f() { let o = {}; for (let i = 0; i < 20000; i++) o = {o}; return JSON.stringify(o).length } }`, "deadline"},
		{"sync loop", `export default { f() { for (;;) {} } }`, "deadline"},
		{"10000 intervals, settled at once", `export default { f() { for (let i = 0; i < 10000; i++) setInterval(() => {}, 1); return "back" } }`, ""},
		{"1000 intervals, awaited", `export default { async f() { for (let i = 0; i < 1000; i++) setInterval(() => {}, 1); await new Promise(r => setTimeout(r, 20)); return "back" } }`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The interval cases must succeed: their deadline leaves room
			// to start 10,000 timers under the race detector.
			deadline := 300 * time.Millisecond
			if c.want == "" {
				deadline = 10 * time.Second
			}
			pkg := load(t, map[string]string{"m.js": c.src})
			inst := js.NewInstance(pkg, js.Options{Timeout: deadline})
			start := time.Now()
			out, err := inst.Call(context.Background(), "m.f")
			took := time.Since(start)
			closeStart := time.Now()
			inst.Close()
			if ct := time.Since(closeStart); ct > time.Second {
				t.Errorf("Close took %v", ct)
			}
			if took > deadline+500*time.Millisecond {
				t.Errorf("the call took %v; its deadline was %v", took, deadline)
			}
			if c.want == "" {
				if err != nil || string(out) != `"back"` {
					t.Fatalf("got %s, %v; want \"back\"", out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, engine.ErrDeadline) {
				t.Fatalf("got %s, %v; want an error about the %s", out, err, c.want)
			}
		})
	}
}

// TestRuntimeAfterANativeOverrun: the instance serves the next call once
// the native call that overran is over, on a new runtime.
//
// The watchdog can only interrupt a native call that is still running when
// it fires; on a loaded machine it may fire after a short match has ended,
// and then nothing was interrupted and the runtime rightly stays. So the
// match grows until one is caught: each a doubles its length.
func TestRuntimeAfterANativeOverrun(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
		n: 0,
		slow(k) { this.n++; return /^(a+)+(?!x)b/.test("a".repeat(k)) },
		count() { return this.n },
	}`})
	inst := js.NewInstance(pkg, js.Options{Timeout: 5 * time.Millisecond})
	defer inst.Close()
	for k := 18; k <= 25; k++ {
		_, err := inst.Call(context.Background(), "m.slow", json.RawMessage(strconv.Itoa(k)))
		if err == nil {
			continue // too short to overrun on this machine
		}
		if !errors.Is(err, engine.ErrDeadline) {
			t.Fatalf("slow(%d): %v", k, err)
		}
		// Later calls may queue behind the overrun; one soon succeeds.
		var out []byte
		for give := time.Now().Add(60 * time.Second); time.Now().Before(give); {
			if out, err = inst.Call(context.Background(), "m.count"); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("count after slow(%d): %v", k, err)
		}
		if string(out) == "0" {
			return // a fresh runtime: n is 0 again
		}
		t.Logf("slow(%d) ended before the watchdog fired (n=%s); trying a longer match", k, out)
	}
	t.Fatal("no overrun was interrupted, or the interrupted runtime was kept")
}

// TestSecretsNeverPrint: declared secrets at any length and with quotes,
// tokens read through bindings or nested in stored objects, and values a
// server echoes back stay out of logs, results and errors.
func TestSecretsNeverPrint(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		json.NewEncoder(w).Encode(map[string]string{"error": "bad request: " + string(body) + " " + r.Header.Get("Authorization")})
	}))
	defer echo.Close()
	fs := map[string]string{
		"package.yaml":       "name: test\nversion: 1.0.0\ninputs:\n  baseUrl: {}\n  pin: {secret: true}\n  pass: {secret: true}\n",
		"refresh.query.yaml": "method: POST\nurl: <<inputs.baseUrl>>/token\nbody:\n  json: {grant: refresh, rt: <<this.params.rt>>}\n",
		"basic.query.yaml":   "method: POST\nurl: <<inputs.baseUrl>>/token\nauth: {basic: {username: client-id, password: <<inputs.pass>>}}\n",
		"m.js": `export default {
			show() { console.log(inputs); showAlert(JSON.stringify(inputs)); return inputs },
			async nested() {
				await storeValue("session", {access_token: "nested-at-123456", refresh_token: "nested-rt-654321"});
				console.log(appsmith.store.session);
				return appsmith.store.session;
			},
			async echo() {
				await storeValue("refreshtoken", "echoed-rt-999999");
				return refresh.run({rt: appsmith.store.refreshtoken});
			},
			async goValue() {
				try { await refresh.run({rt: "x"}) } catch (e) { return [typeof e.value, Object.keys(e.value || {}).length, e.statusCode] }
			},
		}`,
	}
	var log bytes.Buffer
	pkg := load(t, fs)
	in, err := pkg.ResolveInputs(map[string]any{"baseUrl": echo.URL, "pin": "4711", "pass": `pa"ss\word`})
	if err != nil {
		t.Fatal(err)
	}
	inst := js.NewInstance(pkg, js.Options{Store: store.NewMemory(), Inputs: in, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	defer inst.Close()
	var outputs []string
	for _, target := range []string{"m.show", "m.nested", "m.echo", "basic"} {
		out, err := inst.Call(context.Background(), target)
		outputs = append(outputs, inst.Redact(string(out)))
		if err != nil {
			outputs = append(outputs, inst.Redact(err.Error()))
		}
	}
	all := log.String() + strings.Join(outputs, "\n")
	basic := base64.StdEncoding.EncodeToString([]byte(`client-id:pa"ss\word`))
	for _, secret := range []string{"4711", `pa\"ss`, `pa"ss`, "nested-at-123456", "nested-rt-654321", "echoed-rt-999999", basic} {
		if strings.Contains(all, secret) {
			t.Errorf("%s printed:\n%s", secret, all)
		}
	}
	if !strings.Contains(all, "HTTP 400") {
		t.Errorf("the echo's error is missing:\n%s", all)
	}
	// The error a failed query rejects with carries no live Go value.
	out := call(t, inst, "m.goValue")
	if out != `["undefined",0,400]` {
		t.Errorf("e.value: %s", out)
	}
}

func TestStoreKeysMustBeStrings(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default { async f() { await storeValue(Symbol("s"), 1) } }`})
	inst := newInstance(t, pkg, store.NewMemory(), nil)
	_, err := inst.Call(context.Background(), "m.f")
	if err == nil || !strings.Contains(err.Error(), "the key must be a string") {
		t.Fatalf("err = %v", err)
	}
}

// TestDeepJSON: deeply nested responses and arguments convert in linear
// time, or fail with a limit error past js.MaxJSONDepth.
func TestDeepJSON(t *testing.T) {
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer srv.Close()
	pkg := load(t, map[string]string{
		"get.query.yaml": "url: <<inputs.baseUrl>>/x\n",
		"m.js": `export default {
			async depth() { let d = 0; for (let v = await get.run(); typeof v === "object"; v = v.a) d++; return d },
			arg(v) { let d = 0; for (; typeof v === "object"; v = v.a) d++; return d },
		}`,
	})
	inst := newInstance(t, pkg, nil, map[string]any{"baseUrl": srv.URL})
	for _, n := range []int{10, 900, 1000} {
		body = deep(n)
		start := time.Now()
		if got := call(t, inst, "m.depth"); got != fmt.Sprint(n) {
			t.Fatalf("depth %d: got %s", n, got)
		}
		// Linear time is milliseconds; the quadratic walk this guards
		// against took tens of seconds. A loaded machine stays far below.
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("depth %d took %v", n, d)
		}
		if got := call(t, inst, "m.arg", body); got != fmt.Sprint(n) {
			t.Fatalf("argument of depth %d: got %s", n, got)
		}
	}
	// 200 KB of nesting once took 40 s; now it is refused at once.
	body = strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	start := time.Now()
	_, err := inst.Call(context.Background(), "m.depth")
	if err == nil || !strings.Contains(err.Error(), "get: response body: JSON nested deeper than 1000 levels") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("refusing took %v (it once took 40 s)", d)
	}
	// Linear: 900 levels holding 2 KB strings each convert about as fast
	// as the same objects side by side (the rescanning walk was ~450x
	// slower). Timed in one run, as a ratio: the machine is noisy.
	item := `{"s":"` + strings.Repeat("x", 2000) + `","a":`
	timeBody := func(b string) time.Duration {
		body = b
		start := time.Now()
		call(t, inst, "m.depth")
		return time.Since(start)
	}
	flat := timeBody("[" + strings.Repeat(item+"1},", 899) + item + "1}]")
	deepTook := timeBody(strings.Repeat(item, 900) + "1" + strings.Repeat("}", 900))
	if deepTook > 20*flat+100*time.Millisecond {
		t.Errorf("1.8 MB at depth 900 took %v; side by side %v", deepTook, flat)
	}
}

// FuzzJSONToJS: any valid JSON converts to the value JSON.parse gives, at
// any depth the limit allows; invalid JSON is an error.
func FuzzJSONToJS(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, `"x\"y"`, `1e400`, `{"__proto__":1}`, `[`, `-0`, `9007199254740993`} {
		f.Add(s)
	}
	pkg := load(f, map[string]string{"m.js": `export default { same(v, text) { let want; try { want = JSON.parse(text) } catch (e) { return true } return JSON.stringify(v) === JSON.stringify(want) } }`})
	inst := js.NewInstance(pkg, js.Options{})
	defer inst.Close()
	f.Fuzz(func(t *testing.T, s string) {
		text, _ := json.Marshal(s)
		out, err := inst.Call(context.Background(), "m.same", json.RawMessage(s), text)
		if !json.Valid([]byte(s)) {
			return // an error, or undefined for empty text
		}
		if err != nil {
			if strings.Contains(err.Error(), "nested deeper") {
				return
			}
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != "true" {
			t.Fatalf("%q converts unlike JSON.parse", s)
		}
	})
}

// TestBindingsWithoutParams: this.params is an object when a query runs
// without params, and a binding that throws is reported at its own
// position, once.
func TestBindingsWithoutParams(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.RawQuery
	}))
	defer srv.Close()
	pkg := load(t, map[string]string{
		"scoped.query.yaml": "url: <<inputs.baseUrl>>/x\nquery: {scope: \"<<this.params.scope ?? 'read'>>\"}\n",
		"org.query.yaml":    "url: <<inputs.baseUrl>>/x\nheaders:\n  X-Org: <<this.params.org.toUpperCase()>>\n",
	})
	inst := newInstance(t, pkg, nil, map[string]any{"baseUrl": srv.URL})
	call(t, inst, "scoped")
	if q := <-got; q != "scope=read" {
		t.Fatalf("query string %q", q)
	}
	_, err := inst.Call(context.Background(), "org")
	want := `org.query.yaml:3:12: binding "this.params.org.toUpperCase()": TypeError: Cannot read property 'toUpperCase' of undefined or null`
	if err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "org.query.yaml") != 1 {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

// TestRequestResolvesItsOwnMeta: concurrent calls each get their own
// response's meta from request(), as Link-header pagination needs.
func TestRequestResolvesItsOwnMeta(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		if page == "1" {
			time.Sleep(20 * time.Millisecond) // finish after page 2
		}
		w.Header().Set("Link", "<next-of-"+page+">; rel=next")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"page":`+page+`}`)
	}))
	defer srv.Close()
	pkg := load(t, map[string]string{
		"list.query.yaml": "url: <<inputs.baseUrl>>/items\nquery: {page: <<this.params.page>>}\n",
		"m.js": `export default {
			async pages() {
				const [a, b] = await Promise.all([list.request({page: 1}), list.request({page: 2})]);
				return [a.data.page, a.responseMeta.headers.Link[0], b.data.page, b.responseMeta.headers.Link[0], a.responseMeta.statusCode];
			},
		}`,
	})
	inst := newInstance(t, pkg, nil, map[string]any{"baseUrl": srv.URL})
	if got := call(t, inst, "m.pages"); got != `[1,"<next-of-1>; rel=next",2,"<next-of-2>; rel=next",200]` {
		t.Fatalf("got %s", got)
	}
}

func TestThrownValuesPrintAsJSON(t *testing.T) {
	pkg := load(t, map[string]string{"m.js": `export default {
		obj() { throw {code: 42, why: "quota"} },
		async rej() { throw [1, 2] },
		err() { throw new TypeError("bad type") },
	}`})
	inst := newInstance(t, pkg, nil, nil)
	for target, want := range map[string]string{
		"m.obj": `m.obj: {"code":42,"why":"quota"}`,
		"m.rej": `m.rej: [1,2]`,
		"m.err": `m.err: TypeError: bad type`,
	} {
		_, err := inst.Call(context.Background(), target)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", target, err, want)
		}
	}
}
