package etcdtest

import (
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/modrun/modrun/internal/testbin"
)

// TestTakenPortIsToldAtOnce: an etcd whose client port another process
// took before it listened logs so (3.4 then hangs rather than exit), and
// waitHealthy says so at once (launchHealthy then tries fresh ports)
// instead of waiting out its 30 s; a member on free ports becomes
// healthy.
func TestTakenPortIsToldAtOnce(t *testing.T) {
	bin := testbin.Need(t, "etcd-server", "etcd")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	client, peer := taken.Addr().String(), freePort(t)
	s := &Server{Endpoint: client, t: t, dir: t.TempDir(), scheme: "http", health: http.DefaultClient}
	s.args = []string{bin, "--name", "test", "--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", "http://" + client, "--advertise-client-urls", "http://" + client,
		"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
		"--initial-cluster", "test=http://" + peer}
	s.launch()
	defer s.Stop()
	began := time.Now()
	err = waitHealthy(s)
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("etcd on a taken port: %v, want errPortTaken", err)
	}
	if d := time.Since(began); d > 25*time.Second {
		t.Fatalf("told after %v: waited for the deadline", d)
	}
	if srv := Start(t); srv.Endpoint == "" {
		t.Fatal("no endpoint")
	}
}
