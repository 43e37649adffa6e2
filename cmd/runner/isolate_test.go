package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modrun/modrun/internal/testbin"
)

// peakRSSKB is a process's peak resident set, from /proc.
func peakRSSKB(pid int) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// TestIsolation: a package whose runs allocate without bound, spin in a
// native call or crash their worker fails those runs with clear errors,
// while another package's 64 concurrent runs all succeed, and the server's
// own memory stays small.
func TestIsolation(t *testing.T) {
	good := writePackage(t, map[string]string{
		"package.yaml": "name: good\nversion: 1.0.0\n",
		"m.js":         `export default { async work(i) { await new Promise(r => setTimeout(r, 50)); await storeValue("k" + i, i); return i } }`,
	})
	bad := writePackage(t, map[string]string{
		"package.yaml": "name: bad\nversion: 1.0.0\n",
		"m.js": `export default {
	bomb() { const a = []; for (;;) a.push(new Array(1e6).fill(0)); },
	regex() { return /^(a+)+(?!x)b/.test("a".repeat(40)) },
	async nap() { await storeValue("napping", true); await new Promise(r => setTimeout(r, 20000)); return "woke" },
}`,
	})
	db := filepath.Join(t.TempDir(), "s.db")
	srv := startServe(t, "tok-isolate-0123456789", good, bad, "--store", db, "--workers", "2", "--max-memory", "128MiB")
	pid := srv.cmd.Process.Pid
	goodRuns := func(from int) int {
		var wg sync.WaitGroup
		codes := make([]int, 64)
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for attempt := 0; ; attempt++ {
					code, b, _ := srv.call("POST", "/v1/run/good/m.work", fmt.Sprintf(`{"args": [%d]}`, from+i))
					codes[i] = code
					// A run on the worker another package's run takes
					// down fails, once; a client retries. None runs twice.
					if code == 200 || attempt == 3 {
						if code != 200 {
							t.Logf("good run %d: %d %v", i, code, b["error"])
						}
						return
					}
				}
			}()
		}
		wg.Wait()
		failed := 0
		for _, c := range codes {
			if c != 200 {
				failed++
			}
		}
		return failed
	}
	// One bad run at a time, each beside 64 good ones: two bad runs of one
	// package on one worker would share its instance and its loop.
	results := map[string]string{}
	for i, c := range []struct{ target, body string }{{"bomb", `{"timeout": "60s"}`}, {"regex", `{"timeout": "5s"}`}} {
		done := make(chan string, 1)
		go func() {
			code, b, _ := srv.call("POST", "/v1/run/bad/m."+c.target, c.body)
			done <- fmt.Sprint(code, " ", b["error"], b["result"])
		}()
		if failed := goodRuns(64 * i); failed > 0 {
			t.Errorf("%d of 64 runs of the good package failed beside the %s", failed, c.target)
		}
		results[c.target] = <-done
	}
	if r := results["bomb"]; !strings.Contains(r, "run exceeded its memory limit (128 MiB)") {
		t.Errorf("bomb: %s", r)
	}
	if r := results["regex"]; !strings.HasPrefix(r, "504") || !strings.Contains(r, "run exceeded its deadline (") {
		t.Errorf("regex: %s", r)
	}
	// The worker stuck in the RegExp gives up a second after its deadline;
	// then no worker is stuck.
	waitRestart(t, srv, "memory")
	if !waitRestart(t, srv, "deadline") {
		t.Logf("results %v\nlog:\n%s", results, srv.logText())
	}
	// A crash: every worker killed while a run is on one.
	napped := make(chan string, 1)
	go func() {
		code, b, _ := srv.call("POST", "/v1/run/bad/m.nap", `{}`)
		napped <- fmt.Sprint(code, " ", b["error"])
	}()
	// Killed once it runs on a worker (its store write says so): a call
	// not yet started when its worker dies is sent to the next one, and
	// succeeds — on a loaded machine, 500 ms was not always enough.
	for give := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if code, _, _ := srv.call("GET", "/v1/store/bad/napping", ""); code == 200 {
			break
		}
		if time.Now().After(give) {
			t.Fatal("the nap never started on a worker")
		}
	}
	for _, k := range testbin.Children(t, pid) {
		syscall.Kill(k, syscall.SIGKILL)
	}
	if r := <-napped; !strings.HasPrefix(r, "500") || !strings.Contains(r, "the worker process exited") {
		t.Errorf("nap on a killed worker: %s", r)
	}
	if failed := goodRuns(128); failed > 0 {
		t.Errorf("%d of 64 runs failed after the workers were replaced", failed)
	}
	waitRestart(t, srv, "crash")
	if rss := peakRSSKB(pid); rss > 150<<10 {
		t.Errorf("the server's peak RSS is %d MB", rss>>10)
	}
	code, body, _ := srv.call("GET", "/v1/store/good", "")
	if code != 200 || len(body) != 192 {
		t.Errorf("store: %d, %d keys", code, len(body))
	}
	srv.stop()
	if !strings.Contains(srv.logText(), "worker stopped") {
		t.Errorf("no log line for the stopped workers:\n%s", srv.logText())
	}
}

// TestWritesSurviveKilledWorkers: 64 runs doing durable storeValue while
// workers are SIGKILLed at random: every write a run reported done is in
// the store.
func TestWritesSurviveKilledWorkers(t *testing.T) {
	pkg := writePackage(t, map[string]string{
		"package.yaml": "name: dur\nversion: 1.0.0\n",
		"m.js":         `export default { async put(i) { await storeValue("a" + i, i); await new Promise(r => setTimeout(r, 20)); await storeValue("b" + i, i); return i } }`,
	})
	db := filepath.Join(t.TempDir(), "s.db")
	srv := startServe(t, "tok-durable-0123456789", pkg, "--store", db, "--workers", "2")
	pid := srv.cmd.Process.Pid
	stop := make(chan struct{})
	var kills, acks atomic.Int64
	go func() {
		// A worker is killed every 150 ms, but not again before a run
		// has been acknowledged since the last kill: on a loaded machine
		// a new worker may take longer than 150 ms to start, and runs
		// must get through for the test to test anything.
		seen := int64(-1)
		for {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			if acks.Load() == seen {
				continue
			}
			if kids := testbin.Children(t, pid); len(kids) > 0 {
				if syscall.Kill(kids[time.Now().Nanosecond()%len(kids)], syscall.SIGKILL) == nil {
					kills.Add(1)
					seen = acks.Load()
				}
			}
		}
	}()
	var wg sync.WaitGroup
	acked := make([]bool, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := srv.call("POST", "/v1/run/dur/m.put", fmt.Sprintf(`{"args": [%d]}`, i))
			acked[i] = code == 200
			if acked[i] {
				acks.Add(1)
			}
		}()
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	close(stop)
	srv.stop()
	out, _, _ := runCLI(t, "", "store", "list", "--store", db, "--app", "dur")
	n := 0
	for i, ok := range acked {
		if !ok {
			continue
		}
		n++
		for _, k := range []string{"a", "b"} {
			if !strings.Contains(out, fmt.Sprintf(`"%s%d": %d`, k, i, i)) {
				t.Errorf("run %d was acknowledged but %s%d is not in the store", i, k, i)
			}
		}
	}
	if n == 0 {
		t.Fatal("no run succeeded")
	}
	if kills.Load() == 0 {
		t.Fatal("no worker was killed: the test tested nothing")
	}
	t.Logf("%d of 64 runs acknowledged while workers were killed", n)
}

// TestSingleFlightAcrossWorkers: concurrent singleFlight calls on
// different workers share one leader's result. (An instance's calls go
// to one worker: two instances, two workers.)
func TestSingleFlightAcrossWorkers(t *testing.T) {
	pkg := writePackage(t, map[string]string{
		"package.yaml": "name: sf\nversion: 1.0.0\n",
		// The leader's work lasts 5 s, so that all 16 calls join it even
		// on a loaded machine (at 500 ms, a CI run beside a stressed race
		// run started some after it ended).
		"m.js": `export default { async once() { return singleFlight("refresh", async () => { await new Promise(r => setTimeout(r, 5000)); return Math.random() }) } }`,
	})
	srv := startServe(t, "tok-flight-0123456789", pkg, "--store", filepath.Join(t.TempDir(), "s.db"), "--workers", "2", "--instances", "2")
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, b, _ := srv.call("POST", "/v1/run/sf/m.once", "")
			got[i] = fmt.Sprint(b["result"])
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] || g == "<nil>" {
			t.Fatalf("results differ: %v", got)
		}
	}
	if kids := testbin.Children(t, srv.cmd.Process.Pid); len(kids) != 2 {
		t.Errorf("the calls ran on %d workers, want 2", len(kids))
	}
	srv.stop()
}

// waitRestart waits until the server has counted a worker restart for
// reason.
func waitRestart(t *testing.T, srv *served, reason string) bool {
	t.Helper()
	for give := time.Now().Add(15 * time.Second); time.Now().Before(give); time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequest("GET", srv.url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+srv.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(m), `modrun_worker_restarts_total{reason="`+reason+`"}`) {
			return true
		}
	}
	t.Errorf("no worker restart counted for %s", reason)
	return false
}
