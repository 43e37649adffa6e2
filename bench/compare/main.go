// Command compare runs modrun's performance comparisons side by side, in
// one run on one machine, and prints a markdown table of ratios against
// their targets. bench/run.sh calls it; see bench/README.md.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modrun/modrun/internal/benchrun"
)

// result is a contender's benchrun.Result (the JSON that runner bench,
// bench/plain and the Node script print) and what its process cost.
type result struct {
	benchrun.Result
	RSSKB int64         // peak resident set
	CPU   time.Duration // user + system time

	// Of the server, for the serve rows (the client is the load tool);
	// workers included in ServerCPU, their RSS apart.
	ServerCPU   time.Duration
	ServerRSSKB int64
	WorkerRSSKB int64
	// IdleWorkerRSSKB is the largest worker's resident set idleWait
	// after the load ended (issue 33: an idle worker ≤ 40 MB).
	IdleWorkerRSSKB int64
}

// idleWait is how long a served round's workers sit idle before their
// resident sets are read again: past the workers' 2 s idle release.
const idleWait = 5 * time.Second

// serverCPUPerReq is the server's CPU time per request in µs, warmup
// included.
func (r *result) serverCPUPerReq() float64 {
	return float64(r.ServerCPU.Microseconds()) / float64(r.Runs+10**conc)
}

// cpuPerRun is the contender's CPU time per run in µs, warmup included
// (every contender warms up 10 runs per caller).
func (r *result) cpuPerRun() float64 {
	return float64(r.CPU.Microseconds()) / float64(r.Runs+10**conc)
}

var (
	runs        = flag.Int("n", 20000, "runs per throughput measurement")
	conc        = flag.Int("c", 64, "concurrency")
	cold        = flag.Int("cold", 20, "cold starts to average")
	rounds      = flag.Int("rounds", 5, "turns of rows 1, 1c and 2; each row takes the median")
	serveRounds = flag.Int("serve-rounds", 3, "turns of rows 7 and 7b")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "modrun-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, p := range []string{"cmd/runner", "bench/tokenserver", "bench/plain", "bench/memory", "bench/httpload", "bench/plainserve"} {
		must(run("go", "build", "-o", filepath.Join(dir, filepath.Base(p)), "./"+p))
	}
	addr := freeAddr()
	srv := exec.Command(filepath.Join(dir, "tokenserver"), "-addr", addr)
	must(srv.Start())
	defer srv.Process.Kill()
	waitListening(addr)
	url := "http://" + addr
	n, c := strconv.Itoa(*runs), strconv.Itoa(*conc)
	input := "baseUrl=" + url

	runner := filepath.Join(dir, "runner")
	_, err = exec.LookPath("node")
	haveNode := err == nil
	// The contenders of rows 1 and 2 take turns, -rounds times, and each
	// row uses the median: this machine drifts by more than the margins.
	// Row 1c is row 1 with the runner's heap floor off, as Go's defaults
	// would have it: the floor's share of the result is on the table.
	noFloor := []string{"MODRUN_HEAP_FLOOR=0"}
	var sessions, noFloors, plains, nodes []*result
	for range *rounds {
		sessions = append(sessions, benchJSON(nil, runner, "bench", "bench/refresh", "auth.refresh", "-n", n, "-c", c, "--memory-store", "--input", input, "--json"))
		noFloors = append(noFloors, benchJSON(noFloor, runner, "bench", "bench/refresh", "auth.refresh", "-n", n, "-c", c, "--memory-store", "--input", input, "--json"))
		plains = append(plains, benchJSON(nil, filepath.Join(dir, "plain"), "-url", url, "-n", n, "-c", c, "-json"))
		if haveNode {
			nodes = append(nodes, benchJSON(nil, "node", "bench/node/refresh.mjs", url, n, c, "--json"))
		}
	}
	session, sessionNoFloor, plain, node := median(sessions), median(noFloors), median(plains), median(nodes)
	durable := benchJSON(nil, runner, "bench", "bench/refresh", "auth.refreshDurable", "-n", n, "-c", c, "--store", filepath.Join(dir, "d.db"), "--input", input, "--json")
	writes := benchJSON(nil, runner, "bench", "bench/refresh", "auth.store", "-n", n, "-c", c, "--store", filepath.Join(dir, "w.db"), "--json")
	queryRatio := queryBenchmark()
	// Row 4: the example's keepFresh on an empty store (its onLoad and the
	// call itself, no network); 4b: a one-line function.
	runnerCold := coldStart(runner, "run", "examples/refresh-token/package", "auth.keepFresh", "--input", "username=demo", "--input", "password=cold-start", "--store", filepath.Join(dir, "cold.db"))
	runnerColdAdd := coldStart(runner, "run", "bench/refresh", "auth.add", "--args", "[1,2]", "--store", filepath.Join(dir, "cold-add.db"))
	var nodeCold, nodeColdAdd time.Duration
	if node != nil {
		nodeCold = coldStart("node", "bench/node/keepfresh.mjs")
		nodeColdAdd = coldStart("node", "bench/node/add.mjs")
	}
	var mem struct {
		KBPerInstance float64 `json:"kb_per_instance"`
		RSSKB         int     `json:"rss_kb"`
		BytesPerRun   float64 `json:"bytes_per_run"`
	}
	out, err := exec.Command(filepath.Join(dir, "memory"), "-n", "100").Output()
	must(err)
	must(json.Unmarshal(out, &mem))

	// Rows 7 and 8: runner serve over HTTP against a plain Go server and
	// a Node.js server doing the same job, in alternating rounds, and a
	// server's idle cost.
	const token = "bench-token-0123456789"
	load := filepath.Join(dir, "httpload")
	serveRound := func(srv *served, path string) *result {
		r := benchJSON(nil, load, "-url", srv.url+path, "-token", token, "-n", n, "-c", c, "-json")
		srv.account(r)
		return r
	}
	// Row 11: an OTLP/HTTP sink that takes every export, for a server
	// with tracing on.
	var spans atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		spans.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	var serves, inProcs, plainServes, nodeServes, traced []*result
	for range *serveRounds {
		tr := startServed([]string{"MODRUN_TOKEN=" + token, "OTEL_EXPORTER_OTLP_ENDPOINT=" + sink.URL}, runner, "serve", "bench/refresh", "--listen", "127.0.0.1:0",
			"--input", input, "--store", filepath.Join(dir, "serve-traced.db"))
		traced = append(traced, serveRound(tr, "/v1/run/bench-refresh/auth.refresh"))
		tr.stop()
		srv := startServed([]string{"MODRUN_TOKEN=" + token}, runner, "serve", "bench/refresh", "--listen", "127.0.0.1:0",
			"--input", input, "--store", filepath.Join(dir, "serve.db"))
		serves = append(serves, serveRound(srv, "/v1/run/bench-refresh/auth.refresh"))
		srv.workersRSS = srv.childrenRSSKB()
		serves[len(serves)-1].WorkerRSSKB = srv.workersRSS
		time.Sleep(idleWait)
		serves[len(serves)-1].IdleWorkerRSSKB = srv.largestChildRSSKB()
		srv.stop()
		ip := startServed([]string{"MODRUN_TOKEN=" + token}, runner, "serve", "bench/refresh", "--listen", "127.0.0.1:0",
			"--input", input, "--store", filepath.Join(dir, "serve-inproc.db"), "--isolate=false")
		inProcs = append(inProcs, serveRound(ip, "/v1/run/bench-refresh/auth.refresh"))
		ip.stop()
		ps := startServed(nil, filepath.Join(dir, "plainserve"), "-url", url)
		plainServes = append(plainServes, serveRound(ps, "/"))
		ps.stop()
		if haveNode {
			ns := startServed(nil, "node", "bench/node/serve.mjs", url)
			nodeServes = append(nodeServes, serveRound(ns, "/"))
			ns.stop()
		}
	}
	serve, inProc, plainServe, nodeServe, tracedServe := median(serves), median(inProcs), median(plainServes), median(nodeServes), median(traced)
	if spans.Load() == 0 {
		must(fmt.Errorf("row 11: the traced server exported nothing"))
	}
	// Row 10: a cold runner run --isolate (a worker starts) vs in-process.
	coldIsolated := coldStart(runner, "run", "examples/refresh-token/package", "auth.keepFresh", "--input", "username=demo", "--input", "password=cold-start", "--store", filepath.Join(dir, "cold-iso.db"), "--isolate")
	idle := startServed([]string{"MODRUN_TOKEN=" + token}, runner, "serve", "examples/refresh-token/package", "--listen", "127.0.0.1:0",
		"--input", "username=demo", "--input", "password=idle-cost", "--store", filepath.Join(dir, "idle.db"))
	time.Sleep(500 * time.Millisecond)
	idleStart := idle.rssKB()
	benchJSON(nil, load, "-url", idle.url+"/v1/run/refresh-token/auth.keepFresh", "-token", token, "-n", "10000", "-c", "16", "-json")
	idleAfter := idle.rssKB()
	idle.stop()

	fmt.Printf("Measured %s on %d cores, %d runs at concurrency %d; rows 1, 1c and 2: median of %d alternating rounds.\n\n", time.Now().UTC().Format("2006-01-02"), numCPU(), *runs, *conc, *rounds)
	fmt.Println("| # | comparison | modrun | other | ratio | target | |")
	fmt.Println("|---|---|---|---|---|---|---|")
	row := func(i, what, a, b string, ratio float64, target string, ok bool) {
		mark := "met"
		switch {
		case target == "(reported)":
			mark = ""
		case !ok:
			mark = "**missed**"
		}
		fmt.Printf("| %s | %s | %s | %s | %.2f× | %s | %s |\n", i, what, a, b, ratio, target, mark)
	}
	rps := func(r *result) string { return fmt.Sprintf("%.0f runs/s", r.RunsPerSec) }
	row("1", "refresh flow, session writes, vs plain Go", rps(session), rps(plain), session.RunsPerSec/plain.RunsPerSec, "≥ 0.75×", session.RunsPerSec >= 0.75*plain.RunsPerSec)
	row("1b", "refresh flow, durable writes, vs plain Go (in-memory map)", rps(durable), rps(plain), durable.RunsPerSec/plain.RunsPerSec, "(reported)", true)
	row("1c", "row 1 with the heap floor off (MODRUN_HEAP_FLOOR=0)", rps(sessionNoFloor), rps(plain), sessionNoFloor.RunsPerSec/plain.RunsPerSec, "(reported)", true)
	if node != nil {
		row("2", "refresh flow, session writes, vs Node.js", rps(session), rps(node), session.RunsPerSec/node.RunsPerSec, "≥ 2×", session.RunsPerSec >= 2*node.RunsPerSec)
	}
	row("3", "query module alone vs plain net/http (time per request)", "", "", queryRatio, "≤ 1.15×", queryRatio <= 1.15)
	coldRow := func(i, what string, modrun, node time.Duration) {
		if node > 0 {
			row(i, "cold start: "+what+" vs node", ms(modrun), ms(node), float64(modrun)/float64(node), "≤ 0.5×, ≤ 25 ms", modrun <= node/2 && modrun <= 25*time.Millisecond)
		} else {
			row(i, "cold start: "+what, ms(modrun), "", 0, "≤ 25 ms", modrun <= 25*time.Millisecond)
		}
	}
	coldRow("4", "runner run of the example's auth.keepFresh (onLoad + call, no network)", runnerCold, nodeCold)
	coldRow("4b", "runner run of a one-line function", runnerColdAdd, nodeColdAdd)
	row("5", "durable storeValue, 64 concurrent runs", fmt.Sprintf("%.0f writes/s", writes.RunsPerSec), "", writes.RunsPerSec/20000, "≥ 20k/s", writes.RunsPerSec >= 20000)
	row("6", "memory: 100 idle instances; allocated per run", fmt.Sprintf("%.0f KB each (RSS %d MB)", mem.KBPerInstance, mem.RSSKB/1024), fmt.Sprintf("%.1f KB/run", mem.BytesPerRun/1024), mem.BytesPerRun/(50*1024), "≤ 50 KB/run", mem.BytesPerRun <= 50*1024)
	// Rows 7, 9 and 9b–9d: issue 33's targets for the isolated server.
	row("7", "runner serve: refresh flow over HTTP vs a plain Go net/http server", rps(serve), rps(plainServe), serve.RunsPerSec/plainServe.RunsPerSec, "≥ 0.75×", serve.RunsPerSec >= 0.75*plainServe.RunsPerSec)
	if nodeServe != nil {
		row("7b", "runner serve vs a Node.js node:http server", rps(serve), rps(nodeServe), serve.RunsPerSec/nodeServe.RunsPerSec, "≥ 2×", serve.RunsPerSec >= 2*nodeServe.RunsPerSec)
	}
	row("9", "runner serve --isolate=true (workers) vs --isolate=false (in-process)", rps(serve), rps(inProc), serve.RunsPerSec/inProc.RunsPerSec, "≥ 0.9×", serve.RunsPerSec >= 0.9*inProc.RunsPerSec)
	cpu := serve.serverCPUPerReq() / plainServe.serverCPUPerReq()
	row("9b", "server CPU per request, row 7 (workers included) vs plain Go's server", fmt.Sprintf("%.0f µs", serve.serverCPUPerReq()), fmt.Sprintf("%.0f µs", plainServe.serverCPUPerReq()), cpu, "≤ 1.5×", cpu <= 1.5)
	p99 := serve.P99ms / plainServe.P99ms
	row("9c", "p99 latency, row 7 vs plain Go's server", fmt.Sprintf("%.1f ms", serve.P99ms), fmt.Sprintf("%.1f ms", plainServe.P99ms), p99, "≤ 1.3×", p99 <= 1.3)
	idleMB := float64(serve.IdleWorkerRSSKB) / 1024
	row("9d", fmt.Sprintf("RSS of row 7's largest worker, idle %s after its load", idleWait), fmt.Sprintf("%.0f MB", idleMB), "", idleMB/40, "≤ 40 MB", idleMB <= 40)
	row("11", fmt.Sprintf("runner serve with tracing on (OTLP/HTTP export of every span) vs off (row 7): %.0f µs more per run", (1/tracedServe.RunsPerSec-1/serve.RunsPerSec)*1e6),
		rps(tracedServe), rps(serve), tracedServe.RunsPerSec/serve.RunsPerSec, "(reported)", true)
	row("10", "cold start: runner run --isolate of the example's auth.keepFresh vs in-process (row 4)", ms(coldIsolated), ms(runnerCold), float64(coldIsolated)/float64(runnerCold), "≤ 2×", coldIsolated <= 2*runnerCold)
	row("8", "runner serve idle, the example loaded: RSS after start / after 10,000 runs", fmt.Sprintf("%d MB", idleStart>>10), fmt.Sprintf("%d MB", idleAfter>>10), float64(idleAfter)/float64(max(idleStart, 1)), "(reported)", true)
	fmt.Println()
	fmt.Printf("serve rows, p50/p99 ms: runner serve %.2f/%.2f, plain %.2f/%.2f", serve.P50ms, serve.P99ms, plainServe.P50ms, plainServe.P99ms)
	if nodeServe != nil {
		fmt.Printf(", node %.2f/%.2f", nodeServe.P50ms, nodeServe.P99ms)
	}
	fmt.Printf("; server CPU µs per request: runner serve %.0f, plain %.0f", serve.serverCPUPerReq(), plainServe.serverCPUPerReq())
	if nodeServe != nil {
		fmt.Printf(", node %.0f", nodeServe.serverCPUPerReq())
	}
	fmt.Printf("; per-call cost of isolation: %.0f µs of server CPU (%.0f isolated, workers included, vs %.0f in-process)",
		serve.serverCPUPerReq()-inProc.serverCPUPerReq(), serve.serverCPUPerReq(), inProc.serverCPUPerReq())
	fmt.Printf("; server peak RSS MB: runner serve %d (+ workers %d), in-process %d, plain %d", serve.ServerRSSKB>>10, serve.WorkerRSSKB>>10, inProc.ServerRSSKB>>10, plainServe.ServerRSSKB>>10)
	if nodeServe != nil {
		fmt.Printf(", node %d", nodeServe.ServerRSSKB>>10)
	}
	fmt.Println()
	fmt.Printf("latency p50/p99 ms: modrun %.2f/%.2f, durable %.2f/%.2f, plain %.2f/%.2f", session.P50ms, session.P99ms, durable.P50ms, durable.P99ms, plain.P50ms, plain.P99ms)
	if node != nil {
		fmt.Printf(", node %.2f/%.2f", node.P50ms, node.P99ms)
	}
	fmt.Println()
	fmt.Printf("peak RSS MB: modrun %d, heap floor off %d, durable %d, plain %d", session.RSSKB>>10, sessionNoFloor.RSSKB>>10, durable.RSSKB>>10, plain.RSSKB>>10)
	if node != nil {
		fmt.Printf(", node %d", node.RSSKB>>10)
	}
	fmt.Println()
	// CPU per run is steadier than throughput on a shared machine, and it
	// leaves out the token server.
	fmt.Printf("client CPU µs per run: modrun %.0f, heap floor off %.0f, durable %.0f, plain %.0f", session.cpuPerRun(), sessionNoFloor.cpuPerRun(), durable.cpuPerRun(), plain.cpuPerRun())
	if node != nil {
		fmt.Printf(", node %.0f", node.cpuPerRun())
	}
	fmt.Println()
	for name, r := range map[string]*result{"session": session, "heap floor off": sessionNoFloor, "durable": durable, "plain": plain, "writes": writes} {
		if r.Errors > 0 {
			fmt.Printf("%s: %d errors\n", name, r.Errors)
		}
	}
}

// median returns the result with the median runs/s, or nil for none.
func median(rs []*result) *result {
	if len(rs) == 0 {
		return nil
	}
	sorted := append([]*result(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].RunsPerSec < sorted[j].RunsPerSec })
	return sorted[len(sorted)/2]
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// benchJSON runs a contender with env added to the environment and reads
// its JSON result and peak RSS.
func benchJSON(env []string, name string, args ...string) *result {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	var r result
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.RSSKB = ru.Maxrss // KB on Linux
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Runs > 0 {
			return &r
		}
	}
	log.Fatalf("%s: no JSON result in %q", name, out)
	return nil
}

// coldStart is the mean wall time of a whole process, over -cold runs.
func coldStart(name string, args ...string) time.Duration {
	exec.Command(name, args...).Run() // warm the page cache
	var total time.Duration
	for range *cold {
		start := time.Now()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			log.Fatalf("%s: %v: %s", name, err, out)
		}
		total += time.Since(start)
	}
	return total / time.Duration(*cold)
}

var nsRe = regexp.MustCompile(`BenchmarkQuery/(module|plain)-\d+\s+\d+\s+([\d.]+) ns/op`)

// queryBenchmark runs the Go benchmark that compares a query module with
// plain net/http and returns module/plain.
func queryBenchmark() float64 {
	// -count 5 alternates module and plain; each takes its median.
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", "BenchmarkQuery", "-benchtime", "1s", "-count", "5", "./modules/query").CombinedOutput()
	if err != nil {
		log.Fatalf("go test -bench: %v\n%s", err, out)
	}
	ns := map[string][]float64{}
	for _, m := range nsRe.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		ns[m[1]] = append(ns[m[1]], v)
	}
	med := func(xs []float64) float64 {
		sort.Float64s(xs)
		return xs[len(xs)/2]
	}
	return med(ns["module"]) / med(ns["plain"])
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
