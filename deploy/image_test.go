// Package deploy holds the container image's build script and the tests
// that build and run it (DESIGN §20). It has no Go code of its own.
package deploy

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modrun/modrun/internal/testbin"
)

// TestImage builds the image with deploy/image.sh (nothing pulled: FROM
// scratch), and runs it: runner version, then runner serve with the
// example package, answering over the published port as a non-root user,
// with runner healthcheck saying ready inside the container.
func TestImage(t *testing.T) {
	docker := needDocker(t)
	const tag = "modrun:test"
	out, err := exec.Command("bash", "image.sh", tag).CombinedOutput()
	if err != nil {
		t.Fatalf("deploy/image.sh: %v\n%s", err, out)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(docker, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if v := run("run", "--rm", tag, "version"); !strings.HasPrefix(v, "runner ") {
		t.Fatalf("runner version in the image: %q", v)
	}
	pkg, _ := filepath.Abs("../examples/refresh-token/package")
	port := freePort(t)
	const token = "image-token-0123456789abcdef"
	name := "modrun-image-test-" + port
	run("run", "-d", "--name", name, "-e", "MODRUN_TOKEN="+token, "-v", pkg+":/pkg:ro", "-p", "127.0.0.1:"+port+":8787",
		tag, "serve", "/pkg", "--input", "username=demo", "--input", "password=demo-password")
	t.Cleanup(func() { exec.Command(docker, "rm", "-f", name).Run() })
	if uid := run("exec", name, "/usr/local/bin/runner", "version"); uid == "" {
		t.Fatal("exec in the container printed nothing")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/v1/packages", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(b.String(), "refresh-token") {
				break
			}
		}
		if time.Now().After(deadline) {
			logs, _ := exec.Command(docker, "logs", name).CombinedOutput()
			t.Fatalf("the served container did not answer: %v\n%s", err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := run("exec", name, "/usr/local/bin/runner", "healthcheck"); got != "ready" {
		t.Fatalf("runner healthcheck in the container: %q", got)
	}
	if user := run("inspect", "--format", "{{.Config.User}}", name); user != "65532:65532" {
		t.Fatalf("the container runs as %q, want the non-root 65532:65532", user)
	}
}

// needDocker returns docker's path, once its daemon answers. Without
// either, the test fails when $CI is true and skips otherwise.
func needDocker(t *testing.T) string {
	t.Helper()
	docker := testbin.Need(t, "docker.io", "docker")
	if err := exec.Command(docker, "info").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("docker is installed but its daemon does not answer: %v", err)
		}
		t.Skipf("docker's daemon does not answer (%v): start it to run this test", err)
	}
	return docker
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
