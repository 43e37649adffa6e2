// Command faults drives the service faults of DESIGN §16 against a real
// runner serve at full size and prints what each left behind: the longer
// form of cmd/runner's fault tests (TestServe*), for a soak before a
// release.
//
//	go build -o /tmp/runner ./cmd/runner
//	go run ./bench/faults -runner /tmp/runner                # every scenario
//	go run ./bench/faults -runner /tmp/runner -only history  # one: kills, history, apps
//
// kills:   SIGKILL the worker N times under calls with a 1 s deadline;
//
//	the first call after the last kill and ≥ 99% of those within 2 s
//	of it must succeed.
//
// history: 100,000 runs with --history 10 from 64 clients: every answer is
//
//	the run's own result.
//
// apps:    50,000 distinct apps: server and worker RSS stay within 1.5× of
//
//	where 1,000 left them (instances idle for --idle-instance are
//	released), measured in the steady state (after 20,000 runs of one
//	app have filled the runner's 32 MiB heap floor).
//
// It exits 1 if a check fails.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modrun/modrun/internal/procs"
)

const token = "faults-token-0123456789abcdef"

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}

func main() {
	runner := flag.String("runner", "", "the runner binary (go build -o /tmp/runner ./cmd/runner)")
	only := flag.String("only", "", "one scenario: kills, history or apps")
	kills := flag.Int("kills", 9, "worker SIGKILLs (kills)")
	runs := flag.Int("runs", 100000, "runs (history)")
	apps := flag.Int("apps", 50000, "distinct apps (apps)")
	flag.Parse()
	if *runner == "" {
		log.Fatal("-runner is required: go build -o /tmp/runner ./cmd/runner")
	}
	dir, err := os.MkdirTemp("", "modrun-faults-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pkg := filepath.Join(dir, "pkg")
	os.MkdirAll(pkg, 0o755)
	os.WriteFile(filepath.Join(pkg, "package.yaml"), []byte("name: svc\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(pkg, "m.js"), []byte(`export default { hello(name) { return "hello " + name } }`), 0o644)
	ok := true
	for _, sc := range []struct {
		name string
		run  func(string, string, string) bool
	}{
		{"kills", func(r, p, d string) bool { return killScenario(r, p, d, *kills) }},
		{"history", func(r, p, d string) bool { return historyScenario(r, p, d, *runs) }},
		{"apps", func(r, p, d string) bool { return appsScenario(r, p, d, *apps) }},
	} {
		if *only != "" && *only != sc.name {
			continue
		}
		fmt.Printf("== %s\n", sc.name)
		if !sc.run(*runner, pkg, dir) {
			ok = false
		}
	}
	if !ok {
		os.Exit(1)
	}
}

// server is a runner serve process.
type server struct {
	cmd *exec.Cmd
	url string
}

func start(runner string, args ...string) *server {
	cmd := exec.Command(runner, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "MODRUN_TOKEN="+token)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "serving on "); ok {
			go io.Copy(io.Discard, stderr)
			return &server{cmd: cmd, url: u}
		}
	}
	log.Fatal("runner serve did not start")
	return nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

func (s *server) run(body string) (int, map[string]any) {
	req, _ := http.NewRequest("POST", s.url+"/v1/run/svc/m.hello", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, map[string]any{"error": err.Error()}
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// children are the PIDs whose parent is pid.
func children(pid int) []int {
	pids, err := procs.Children(pid)
	if err != nil {
		log.Fatal(err)
	}
	return pids
}

// rss is a process's resident set in MiB.
func rss(pid int) float64 { return float64(procs.RSS(pid)) / (1 << 20) }

func killScenario(runner, pkg, dir string, kills int) bool {
	s := start(runner, pkg, "--store", filepath.Join(dir, "kills.db"))
	defer s.stop()
	body := `{"args": ["k"], "timeout": "1s"}`
	var last time.Time
	for i := range kills {
		if code, out := s.run(body); code != 200 {
			fmt.Printf("before kill %d: %d %v\n", i+1, code, out)
		}
		for _, w := range children(s.cmd.Process.Pid) {
			syscall.Kill(w, syscall.SIGKILL)
		}
		last = time.Now()
		time.Sleep(5 * time.Second / time.Duration(kills))
	}
	n, failed, firstOK := 0, 0, false
	for time.Since(last) < 2*time.Second || n < 100 {
		code, _ := s.run(body)
		if n == 0 {
			firstOK = code == 200
		}
		if code != 200 {
			failed++
		}
		n++
	}
	fmt.Printf("%d kills; first call after the last: ok=%v; %d of %d calls within 2 s failed\n", kills, firstOK, failed, n)
	return firstOK && failed*100 <= n
}

func historyScenario(runner, pkg, dir string, runs int) bool {
	s := start(runner, pkg, "--store", filepath.Join(dir, "history.db"), "--history", "10")
	defer s.stop()
	var next, wrong atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(runs) {
					return
				}
				name := strconv.FormatInt(i, 10)
				code, out := s.run(`{"args": ["` + name + `"]}`)
				if code != 200 || out["result"] != "hello "+name || out["id"] == nil {
					if wrong.Add(1) <= 5 {
						fmt.Printf("run %s: %d %v\n", name, code, out)
					}
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%d runs with --history 10 at c=64 in %v: %d answers not the run's own result\n", runs, time.Since(t0).Round(time.Second), wrong.Load())
	return wrong.Load() == 0
}

func appsScenario(runner, pkg, dir string, apps int) bool {
	s := start(runner, pkg, "--store", filepath.Join(dir, "apps.db"), "--idle-instance", "2s", "--workers", "1")
	defer s.stop()
	measure := func() (float64, float64) {
		w := 0.0
		for _, c := range children(s.cmd.Process.Pid) {
			w += rss(c)
		}
		return rss(s.cmd.Process.Pid), w
	}
	var next atomic.Int64
	drive := func(upto int64) {
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > upto {
						return
					}
					s.run(fmt.Sprintf(`{"args": ["x"], "app": "app%d"}`, i))
				}
			}()
		}
		wg.Wait()
		next.Store(upto)
	}
	// Steady state first: the runner keeps a 32 MiB heap floor, so a
	// fresh process's RSS grows until garbage first fills it, whatever
	// it holds. 20,000 runs of one app fill it.
	for i := range 20000 {
		s.run(fmt.Sprintf(`{"args": ["%d"]}`, i))
	}
	drive(1000)
	time.Sleep(5 * time.Second) // past --idle-instance: the 1,000 are released
	s0, w0 := measure()
	fmt.Printf("after 1,000 apps: server %.0f MiB, workers %.0f MiB\n", s0, w0)
	drive(int64(apps))
	time.Sleep(5 * time.Second)
	s1, w1 := measure()
	fmt.Printf("after %d apps: server %.0f MiB (%.2fx), workers %.0f MiB (%.2fx)\n", apps, s1, s1/s0, w1, w1/w0)
	return s1 <= 1.5*s0 && w1 <= 1.5*w0
}
