// Package etcdtest starts a real etcd (Debian's etcd-server) for tests: one
// member on free loopback ports, its data in a temporary directory.
package etcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modrun/modrun/internal/testbin"
)

// Server is a running etcd.
type Server struct {
	Endpoint string // HOST:PORT of its client listener
	t        testing.TB
	dir      string
	args     []string
	cmd      *exec.Cmd
	exited   chan struct{}
	scheme   string // of the client listener: http or https
	health   *http.Client
}

// Start starts an etcd for the test and stops it when the test ends. With
// no etcd binary, the test skips or fails as testbin.Need says.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "http", http.DefaultClient)
}

// launchAttempts is how many times etcd is started on fresh ports when
// the ones chosen were taken before it bound them: freePort closes its
// listener before etcd listens, and a test running in parallel may take
// the port in between (CI saw "bind: address already in use").
const launchAttempts = 5

// errPortTaken is a member's exit because a port it was given was taken.
var errPortTaken = errors.New("etcd: a port chosen for it was taken before it listened")

// start starts etcd serving clients by scheme, checking its health with
// health, with extra flags.
func start(t testing.TB, scheme string, health *http.Client, extra ...string) *Server {
	t.Helper()
	bin := testbin.Need(t, "etcd-server", "etcd")
	return launchHealthy(t, func() []*Server {
		client, peer := freePort(t), freePort(t)
		s := &Server{Endpoint: client, t: t, dir: t.TempDir(), scheme: scheme, health: health}
		s.args = append([]string{bin,
			"--name", "test",
			"--data-dir", filepath.Join(s.dir, "data"),
			"--listen-client-urls", scheme + "://" + client,
			"--advertise-client-urls", scheme + "://" + client,
			"--listen-peer-urls", "http://" + peer,
			"--initial-advertise-peer-urls", "http://" + peer,
			"--initial-cluster", "test=http://" + peer,
			"--log-level", "error",
		}, extra...)
		return []*Server{s}
	})[0]
}

// launchHealthy launches the members newMembers makes and waits until
// they are healthy; they stop when the test ends. If a port chosen for
// one was taken before it listened, they are stopped and newMembers
// makes them again, on fresh ports, up to launchAttempts times.
func launchHealthy(t testing.TB, newMembers func() []*Server) []*Server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		members := newMembers()
		for _, s := range members {
			s.launch()
		}
		err := waitHealthy(members...)
		if err == nil {
			for _, s := range members {
				t.Cleanup(s.Stop)
			}
			return members
		}
		for _, s := range members {
			s.Stop()
		}
		if !errors.Is(err, errPortTaken) || attempt == launchAttempts {
			t.Fatal(err)
		}
	}
}

func (s *Server) start() {
	s.t.Helper()
	s.launch()
	if err := waitHealthy(s); err != nil {
		s.t.Fatal(err)
	}
}

// launch starts the process without waiting for it.
func (s *Server) launch() {
	s.t.Helper()
	log, err := os.OpenFile(filepath.Join(s.dir, "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start etcd: %v", err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	s.exited = exited
	go func() { cmd.Wait(); log.Close(); close(exited) }()
}

// waitHealthy waits up to 30s for every member's /health to answer 200
// (a member with a leader). It returns at once, with an error wrapping
// errPortTaken, if a member's log says a port was in use, and with one
// holding its log if a member exits.
func waitHealthy(members ...*Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	healthy := make([]bool, len(members))
	for left := len(members); ; {
		for i, s := range members {
			if healthy[i] {
				continue
			}
			// etcd 3.4 logs a port it cannot bind and may then hang
			// instead of exiting: its log is read as well.
			b, _ := os.ReadFile(filepath.Join(s.dir, "etcd.log"))
			if bytes.Contains(b, []byte("bind: address already in use")) {
				return fmt.Errorf("%w; its log:\n%s", errPortTaken, b)
			}
			select {
			case <-s.exited:
				return fmt.Errorf("etcd exited before it became healthy; its log:\n%s", b)
			default:
			}
			// Five seconds at most a look: whatever holds a taken port
			// may never answer (a TLS handshake under -race on a busy
			// machine may take more than one).
			look, done := context.WithTimeout(ctx, 5*time.Second)
			req, _ := http.NewRequestWithContext(look, "GET", s.scheme+"://"+s.Endpoint+"/health", nil)
			if resp, err := s.health.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					healthy[i] = true
					left--
				}
			}
			done()
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var logs []byte
			for i, s := range members {
				if !healthy[i] {
					b, _ := os.ReadFile(filepath.Join(s.dir, "etcd.log"))
					logs = append(logs, b...)
				}
			}
			return fmt.Errorf("etcd did not become healthy in 30s; its log:\n%s", logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartCluster starts an etcd cluster of n members on loopback and
// returns them; Endpoints joins their client endpoints for a store URL.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	bin := testbin.Need(t, "etcd-server", "etcd")
	return launchHealthy(t, func() []*Server {
		members := make([]*Server, n)
		peers := make([]string, n)
		var initial []string
		for i := range members {
			peers[i] = freePort(t)
			initial = append(initial, fmt.Sprintf("m%d=http://%s", i, peers[i]))
		}
		for i := range members {
			client := freePort(t)
			s := &Server{Endpoint: client, t: t, dir: t.TempDir(), scheme: "http", health: http.DefaultClient}
			s.args = []string{bin,
				"--name", fmt.Sprintf("m%d", i),
				"--data-dir", filepath.Join(s.dir, "data"),
				"--listen-client-urls", "http://" + client,
				"--advertise-client-urls", "http://" + client,
				"--listen-peer-urls", "http://" + peers[i],
				"--initial-advertise-peer-urls", "http://" + peers[i],
				"--initial-cluster", strings.Join(initial, ","),
				"--initial-cluster-state", "new",
				"--log-level", "error",
			}
			members[i] = s
		}
		return members
	})
}

// Endpoints joins the members' client endpoints: HOST:PORT,HOST:PORT…
func Endpoints(members []*Server) string {
	var eps []string
	for _, s := range members {
		eps = append(eps, s.Endpoint)
	}
	return strings.Join(eps, ",")
}

// Pause freezes etcd (SIGSTOP) as a network pause looks to its clients:
// connections stay open and nothing answers. Resume ends it.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("pausing etcd: %v", err)
	}
	// The signal is delivered asynchronously: on a busy machine etcd's
	// threads may still answer a request or two. Wait until the kernel
	// says it is stopped (state T in /proc/PID/stat).
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // no /proc: the signal is all we can do
		}
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "T" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("etcd did not stop within 10 s of SIGSTOP")
		}
	}
}

// Resume lets a paused etcd go on (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("resuming etcd: %v", err)
	}
}

// Stop kills etcd (as a crash would) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts etcd again on the same ports and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// URL is a store URL of this etcd under prefix.
func (s *Server) URL(prefix string) string {
	if s.scheme == "https" {
		return fmt.Sprintf("etcds://%s/%s", s.Endpoint, prefix)
	}
	return fmt.Sprintf("etcd://%s/%s", s.Endpoint, prefix)
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// DataDir is the member's data directory: what etcd keeps at rest.
func (s *Server) DataDir() string { return filepath.Join(s.dir, "data") }
