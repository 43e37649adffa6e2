// Package etcdtest starts a real etcd (Debian's etcd-server) for tests: one
// member on free loopback ports, its data in a temporary directory.
package etcdtest

import (
	"bytes"
	"context"
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

// start starts etcd serving clients by scheme, checking its health with
// health, with extra flags.
func start(t testing.TB, scheme string, health *http.Client, extra ...string) *Server {
	t.Helper()
	bin := testbin.Need(t, "etcd-server", "etcd")
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
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.launch()
	s.waitHealthy()
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

// waitHealthy waits up to 30s for /health to answer 200 (a member with a
// leader).
func (s *Server) waitHealthy() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.scheme+"://"+s.Endpoint+"/health", nil)
		if resp, err := s.health.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(filepath.Join(s.dir, "etcd.log"))
			s.t.Fatalf("etcd did not become healthy in 30s; its log:\n%s", b)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartCluster starts an etcd cluster of n members on loopback and
// returns them; Endpoints joins their client endpoints for a store URL.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	bin := testbin.Need(t, "etcd-server", "etcd")
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
		s.launch()
		t.Cleanup(s.Stop)
		members[i] = s
	}
	for _, s := range members {
		s.waitHealthy()
	}
	return members
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
