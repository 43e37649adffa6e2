package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

func TestBenchOutput(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: b\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default {
	n: 0,
	add(a, b) { return a + b; },
	async later(x) { await new Promise(r => setTimeout(r, 1)); return x; },
	fails() { if (++this.n % 2) throw new Error("odd"); return 1; },
};`), 0o644)
	db := filepath.Join(t.TempDir(), "s.db")

	out, errOut, code := runCLI(t, "", "bench", dir, "m.later", "--args", "[7]", "-n", "200", "-c", "8", "--warmup", "2", "--store", db, "--json")
	if code != 0 {
		t.Fatalf("bench: %d %s", code, errOut)
	}
	var r struct {
		Runs        int     `json:"runs"`
		Concurrency int     `json:"concurrency"`
		RunsPerSec  float64 `json:"runs_per_sec"`
		P50         float64 `json:"p50_ms"`
		P90         float64 `json:"p90_ms"`
		P99         float64 `json:"p99_ms"`
		Errors      *int    `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if r.Runs != 200 || r.Concurrency != 8 || r.RunsPerSec <= 0 || r.Errors == nil || *r.Errors != 0 || r.P50 < 1 || r.P90 < r.P50 || r.P99 < r.P90 {
		t.Fatalf("result %+v from %s", r, out)
	}
	for _, key := range []string{"runs", "concurrency", "runs_per_sec", "p50_ms", "p90_ms", "p99_ms", "errors"} {
		var m map[string]any
		json.Unmarshal([]byte(out), &m)
		if _, ok := m[key]; !ok {
			t.Errorf("--json lacks %q: %s", key, out)
		}
	}

	out, _, code = runCLI(t, "", "bench", dir, "m.fails", "-n", "100", "-c", "1", "--warmup", "0", "--memory-store")
	if code != 0 || !regexp.MustCompile(`^runs 100  concurrency 1  \d+ runs/s  p50 [\d.]+ ms  p90 [\d.]+ ms  p99 [\d.]+ ms  errors 50\nfirst error: m.fails: Error: odd`).MatchString(out) {
		t.Fatalf("text output: %d %q", code, out)
	}
	if _, _, code := runCLI(t, "", "bench", dir, "m.add", "-n", "0"); code != 2 {
		t.Fatalf("-n 0: exit %d, want 2", code)
	}
}

// TestBenchProfiles checks that --cpuprofile and --memprofile write
// profiles pprof can read.
func TestBenchProfiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: b\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default { add(a, b) { return a + b; } };`), 0o644)
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	if _, errOut, code := runCLI(t, "", "bench", dir, "m.add", "--args", "[1,2]", "-n", "2000", "--memory-store", "--cpuprofile", cpu, "--memprofile", mem); code != 0 {
		t.Fatalf("bench: %d %s", code, errOut)
	}
	for _, f := range []string{cpu, mem} {
		p, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		prof, err := profile.Parse(p)
		p.Close()
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		if len(prof.SampleType) == 0 {
			t.Errorf("%s: no sample types", filepath.Base(f))
		}
	}
}

// BenchmarkColdStart is row 4 of bench/: a whole `runner run` process of
// the refresh-token example's auth.keepFresh on an empty store (its onLoad
// and the call, no network), against Node.js loading the same auth.js and
// calling keepFresh() (bench/node/keepfresh.mjs). Compare ns/op of the two
// (target: runner ≤ 25 ms and ≤ 0.5× node).
func BenchmarkColdStart(b *testing.B) {
	bin := runnerBinary(b)
	db := filepath.Join(b.TempDir(), "cold.db")
	start := func(b *testing.B, name string, args ...string) {
		for b.Loop() {
			out, err := exec.Command(name, args...).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "null" {
				b.Fatalf("%s: %v: %s", name, err, out)
			}
		}
	}
	b.Run("runner", func(b *testing.B) {
		start(b, bin, "run", "../../examples/refresh-token/package", "auth.keepFresh",
			"--input", "username=demo", "--input", "password=cold-start", "--store", db)
	})
	b.Run("node", func(b *testing.B) {
		node, err := exec.LookPath("node")
		if err != nil {
			b.Skip("node is not on the PATH: only the runner is measured")
		}
		start(b, node, "../../bench/node/keepfresh.mjs")
	})
}

// TestBenchTimeout: bench --timeout, documented, is each run's deadline
// (issue 32: it was rejected as an unknown flag).
func TestBenchTimeout(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: b\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default { async slow() { await new Promise(r => setTimeout(r, 5000)); return 1 } }`), 0o644)
	out, errOut, code := runCLI(t, "", "bench", dir, "m.slow", "-n", "2", "--warmup", "0", "--memory-store", "--timeout", "100ms", "--json")
	var r struct {
		Errors     int    `json:"errors"`
		FirstError string `json:"first_error"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --timeout: %d %q %s", code, out, errOut)
	}
	if r.Errors != 2 || !strings.Contains(r.FirstError, "deadline (100ms)") {
		t.Fatalf("bench --timeout 100ms of a 5 s run: %+v", r)
	}
}

// TestBenchShowsProgress: a bench that runs past progress.Delay says how
// far it has got on stderr, and its JSON on stdout stays clean (issue 32).
func TestBenchShowsProgress(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: b\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default { async nap() { await new Promise(r => setTimeout(r, 100)); return 1 } }`), 0o644)
	// 30 naps one after another take at least 3 s, past the 2 s delay.
	out, errOut, code := runCLI(t, "", "bench", dir, "m.nap", "-n", "30", "-c", "1", "--warmup", "0", "--memory-store", "--json")
	var r struct {
		Runs   int `json:"runs"`
		Errors int `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Runs != 30 || r.Errors != 0 {
		t.Fatalf("bench: %d %q %s", code, out, errOut)
	}
	if !regexp.MustCompile(`(?m)^bench: \d+ of 30 runs, \d+ runs/s so far$`).MatchString(errOut) {
		t.Fatalf("stderr %q: want a progress line", errOut)
	}
}
