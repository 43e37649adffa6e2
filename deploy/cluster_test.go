package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The cluster test's settings: tokens live a few seconds, the partition
// outlasts the etcd lock's 10 s lease, and a replica must be ready again
// within readyWithin of its fault ending (DESIGN §20).
const (
	clusterTTL   = 4 * time.Second
	partitionFor = 15 * time.Second
	etcdDownFor  = 8 * time.Second
	readyWithin  = 10 * time.Second
	loadWorkers  = 6
)

// TestCluster builds the images, starts deploy/compose.yaml (three etcd
// members, three replicas, the example's auth service) and drives writes
// and the refresh flow through all three replicas while (a) an etcd
// member is stopped and started again, (b) one replica is cut off the
// network for longer than the lock's lease and reconnected, (c) every
// replica is restarted in turn. Then: no acknowledged write lost, every
// acknowledged run in every replica's history, one token request per
// expiry across the cluster and no refresh token spent twice, each
// replica ready again within 10 s. Its figures go to the test log and to
// build/cluster-report.txt (.ci/run prints it).
func TestCluster(t *testing.T) {
	docker := needDocker(t)
	if _, err := exec.LookPath("docker-compose"); err != nil && exec.Command(docker, "compose", "version").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("neither docker compose nor docker-compose is installed: apt-get install docker-compose")
		}
		t.Skip("neither docker compose nor docker-compose is installed: apt-get install docker-compose to run this test")
	}
	c := newCluster(t)
	c.sh("build")
	c.sh("up")
	c.token = strings.TrimSpace(c.read(filepath.Join(c.dir, "token")))

	if code, body := c.call(c.replicas[0], "POST", "/v1/run/refresh-token/auth.login", `{}`); code != 200 {
		t.Fatalf("auth.login: %d %s", code, body)
	}
	load := c.startLoad()
	var ready []string // what each fault's recovery took

	time.Sleep(5 * time.Second)
	// (a) An etcd member stops and comes back: the other two keep quorum.
	c.sh("stop", "etcd2")
	time.Sleep(etcdDownFor)
	c.sh("start", "etcd2")
	for _, r := range c.replicas {
		ready = append(ready, fmt.Sprintf("etcd2 back, %s ready after %v", r.name, c.waitReady(r).Round(time.Millisecond)))
	}

	time.Sleep(3 * time.Second)
	// (b) A replica is cut off longer than its lock's lease, then joins.
	r3 := c.replicas[2]
	id := strings.TrimSpace(c.sh("ps", "-q", r3.name))
	network := c.project + "_default"
	c.docker(docker, "network", "disconnect", network, id)
	time.Sleep(partitionFor)
	c.docker(docker, "network", "connect", network, id)
	ready = append(ready, fmt.Sprintf("%s reconnected, ready after %v", r3.name, c.waitReady(r3).Round(time.Millisecond)))

	time.Sleep(3 * time.Second)
	// (c) A rolling restart: each replica drains (SIGTERM) and starts again.
	for _, r := range c.replicas {
		c.sh("restart", "-t", "30", r.name)
		ready = append(ready, fmt.Sprintf("%s restarted, ready after %v", r.name, c.waitReady(r).Round(time.Millisecond)))
		time.Sleep(2 * time.Second)
	}
	time.Sleep(3 * time.Second)
	load.stop()

	report := &strings.Builder{}
	say := func(format string, args ...any) {
		fmt.Fprintf(report, format+"\n", args...)
	}
	say("cluster test %s: %d replicas, 3 etcd members, tokens living %v, %d load workers for %v",
		time.Now().UTC().Format(time.RFC3339), len(c.replicas), clusterTTL, loadWorkers, load.took.Round(time.Second))
	for _, r := range c.replicas {
		say("  %s: %d writes and %d runs acknowledged, %d calls failed (faults)", r.name, load.writesBy[r.name], load.runsBy[r.name], load.failedBy[r.name])
	}
	lost := c.lostWrites(load.writes)
	say("acknowledged writes: %d, lost: %d", len(load.writes), lost)
	missing := c.missingRuns(load.runs)
	say("acknowledged runs: %d, missing from a replica's history: %d (of %d lookups)", len(load.runs), missing, len(load.runs)*len(c.replicas))
	st := c.authStats()
	minGap := time.Duration(0)
	for i := 1; i < len(st.Rotations); i++ {
		gap := time.Duration(st.Rotations[i]-st.Rotations[i-1]) * time.Millisecond
		if i == 1 || gap < minGap {
			minGap = gap
		}
	}
	say("token requests: %d refreshes (%d rotated), shortest gap between two %v; refresh-token reuses: %d",
		st.Refreshes, len(st.Rotations), minGap, st.Reuses)
	for _, l := range ready {
		say("  %s", l)
	}
	t.Log("\n" + report.String())
	os.MkdirAll("../build", 0o755)
	os.WriteFile("../build/cluster-report.txt", []byte(report.String()), 0o644)

	if lost != 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
	if missing != 0 {
		t.Errorf("%d acknowledged runs missing from a replica's history", missing)
	}
	if st.Reuses != 0 {
		t.Errorf("%d refresh-token reuses", st.Reuses)
	}
	if int(st.Refreshes) != len(st.Rotations) {
		t.Errorf("%d refresh requests but %d rotations: some were refused", st.Refreshes, len(st.Rotations))
	}
	// One request per expiry: two for one expiry would come within
	// moments of each other; one per expiry come about a lifetime apart.
	if want := int(load.took / clusterTTL / 2); len(st.Rotations) < want {
		t.Errorf("%d refreshes in %v with tokens living %v: want at least %d", len(st.Rotations), load.took, clusterTTL, want)
	}
	if len(st.Rotations) > 1 && minGap < clusterTTL/4 {
		t.Errorf("two refreshes %v apart: more than one token request for one expiry", minGap)
	}
	for _, r := range c.replicas {
		if load.runsBy[r.name] == 0 || load.writesBy[r.name] == 0 {
			t.Errorf("%s acknowledged no run or no write: the load did not reach it", r.name)
		}
	}
}

type replica struct{ name, url string }

type cluster struct {
	t        *testing.T
	project  string
	dir      string
	env      []string
	token    string
	replicas []replica
	auth     string
	client   *http.Client
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, project: fmt.Sprintf("modruntest%d", os.Getpid()), dir: t.TempDir(),
		client: &http.Client{Timeout: 10 * time.Second}}
	authPort := freePort(t)
	c.auth = "http://127.0.0.1:" + authPort
	c.env = append(os.Environ(), "COMPOSE_PROJECT_NAME="+c.project, "MODRUN_CLUSTER_DIR="+c.dir, "MODRUN_TAG=test",
		"AUTH_PORT="+authPort, "AUTH_TTL="+clusterTTL.String(), "MODRUN_HISTORY=100000")
	for i := range 3 {
		p := freePort(t)
		c.env = append(c.env, fmt.Sprintf("MODRUN_PORT_%d=%s", i+1, p))
		c.replicas = append(c.replicas, replica{fmt.Sprintf("runner%d", i+1), "http://127.0.0.1:" + p})
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.run("logs", "--tail", "40")
			t.Logf("the cluster's last logs:\n%s", out)
		}
		if out, err := c.run("down"); err != nil {
			t.Logf("cluster.sh down: %v\n%s", err, out)
		}
	})
	return c
}

// run runs deploy/cluster.sh with args in the test's environment.
func (c *cluster) run(args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{"cluster.sh"}, args...)...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cluster) sh(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cluster) docker(docker string, args ...string) {
	c.t.Helper()
	if out, err := exec.Command(docker, args...).CombinedOutput(); err != nil {
		c.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (c *cluster) read(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

// call sends an API request to r; code 0 means no answer.
func (c *cluster) call(r replica, method, path, body string) (int, []byte) {
	req, _ := http.NewRequest(method, r.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitReady polls r's /readyz and returns how long it took to answer 200;
// past readyWithin (with slack for polling) it fails the test.
func (c *cluster) waitReady(r replica) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		if code, _ := c.call(r, "GET", "/readyz", ""); code == 200 {
			took := time.Since(start)
			if took > readyWithin {
				c.t.Errorf("%s ready only %v after its fault ended (want %v)", r.name, took, readyWithin)
			}
			return took
		}
		if time.Since(start) > 2*time.Minute {
			c.t.Fatalf("%s not ready 2 minutes after its fault ended", r.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type load struct {
	done     chan struct{}
	wg       sync.WaitGroup
	start    time.Time
	took     time.Duration
	mu       sync.Mutex
	writes   map[string]string // key → the value acknowledged
	runs     []string          // acknowledged run ids
	writesBy map[string]int
	runsBy   map[string]int
	failedBy map[string]int
}

// startLoad runs loadWorkers callers, each turning over the replicas:
// a write (PUT of a new key) and a run of the refresh flow
// (auth.getProfile) per round.
func (c *cluster) startLoad() *load {
	l := &load{done: make(chan struct{}), start: time.Now(), writes: map[string]string{},
		writesBy: map[string]int{}, runsBy: map[string]int{}, failedBy: map[string]int{}}
	for w := range loadWorkers {
		l.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-l.done:
					return
				default:
				}
				r := c.replicas[(w+n)%len(c.replicas)]
				key, val := fmt.Sprintf("k-%d-%d", w, n), fmt.Sprintf(`{"w":%d,"n":%d}`, w, n)
				wcode, _ := c.call(r, "PUT", "/v1/store/cluster/"+key, val)
				rcode, body := c.call(r, "POST", "/v1/run/refresh-token/auth.getProfile", `{}`)
				var ans struct{ ID string }
				json.Unmarshal(body, &ans)
				l.mu.Lock()
				if wcode/100 == 2 {
					l.writes[key] = val
					l.writesBy[r.name]++
				} else {
					l.failedBy[r.name]++
				}
				if rcode == 200 && ans.ID != "" {
					l.runs = append(l.runs, ans.ID)
					l.runsBy[r.name]++
				} else {
					l.failedBy[r.name]++
				}
				l.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return l
}

func (l *load) stop() {
	close(l.done)
	l.wg.Wait()
	l.took = time.Since(l.start)
}

// lostWrites reads every acknowledged key back, from every replica in turn.
func (c *cluster) lostWrites(writes map[string]string) int {
	keys := make([]string, 0, len(writes))
	for k := range writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var mu sync.Mutex
	lost := 0
	c.each(len(keys), func(i int) {
		r := c.replicas[i%len(c.replicas)]
		code, body := c.call(r, "GET", "/v1/store/cluster/"+keys[i], "")
		var got, want any
		json.Unmarshal(body, &got)
		json.Unmarshal([]byte(writes[keys[i]]), &want)
		if code != 200 || fmt.Sprint(got) != fmt.Sprint(want) {
			mu.Lock()
			lost++
			if lost <= 5 {
				c.t.Logf("write %s: %s answers %d %s, want %s", keys[i], r.name, code, bytes.TrimSpace(body), writes[keys[i]])
			}
			mu.Unlock()
		}
	})
	return lost
}

// missingRuns looks every acknowledged run up on every replica. A replica
// reads other servers' runs from the store at most once a second: a miss
// is asked again for a few seconds.
func (c *cluster) missingRuns(runs []string) int {
	var mu sync.Mutex
	missing := 0
	c.each(len(runs)*len(c.replicas), func(i int) {
		id, r := runs[i/len(c.replicas)], c.replicas[i%len(c.replicas)]
		var code int
		var body []byte
		for try := 0; try < 10; try++ {
			if code, body = c.call(r, "GET", "/v1/runs/"+id, ""); code == 200 {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		var run struct{ Status string }
		json.Unmarshal(body, &run)
		if code != 200 || run.Status != "succeeded" {
			mu.Lock()
			missing++
			if missing <= 5 {
				c.t.Logf("run %s on %s: %d %s", id, r.name, code, bytes.TrimSpace(body))
			}
			mu.Unlock()
		}
	})
	return missing
}

// each calls f(0..n-1) on 16 goroutines.
func (c *cluster) each(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

type authStats struct {
	Refreshes int64   `json:"refreshes"`
	Reuses    int64   `json:"reuses"`
	Rotations []int64 `json:"rotations"`
}

func (c *cluster) authStats() authStats {
	c.t.Helper()
	resp, err := c.client.Get(c.auth + "/stats")
	if err != nil {
		c.t.Fatalf("the auth service's stats: %v", err)
	}
	defer resp.Body.Close()
	var st authStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		c.t.Fatalf("the auth service's stats: %v", err)
	}
	return st
}
