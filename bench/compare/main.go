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
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
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
}

// cpuPerRun is the contender's CPU time per run in µs, warmup included
// (every contender warms up 10 runs per caller).
func (r *result) cpuPerRun() float64 {
	return float64(r.CPU.Microseconds()) / float64(r.Runs+10**conc)
}

var (
	runs   = flag.Int("n", 20000, "runs per throughput measurement")
	conc   = flag.Int("c", 64, "concurrency")
	cold   = flag.Int("cold", 20, "cold starts to average")
	rounds = flag.Int("rounds", 5, "turns of rows 1, 1c and 2; each row takes the median")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "modrun-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, p := range []string{"cmd/runner", "bench/tokenserver", "bench/plain", "bench/memory"} {
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

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(addr string) {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log.Fatal("the token server did not start")
}

func numCPU() int {
	out, _ := exec.Command("nproc").Output()
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}
