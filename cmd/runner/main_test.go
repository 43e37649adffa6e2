package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modrun/modrun/internal/monitor"
	"github.com/modrun/modrun/seal"
)

// runCLI runs the CLI in-process.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// runnerBinary builds cmd/runner once per test process.
func runnerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "runner-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "runner")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("go build: %s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building runner: %v", buildErr)
	}
	return binPath
}

// runBinary runs the built runner as a real process.
func runBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(runnerBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestMain(m *testing.M) {
	// One keyring for every runner this package's tests start, in this
	// process or as children (their XDG_STATE_HOME differs), so that a
	// store one writes another reads. Tests of the default keyring unset
	// it.
	keys, err := os.MkdirTemp("", "runner-test-keys")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(keys)
	if _, err := seal.AddKey(filepath.Join(keys, "keys")); err != nil {
		panic(err)
	}
	os.Setenv("MODRUN_KEYS_FILE", filepath.Join(keys, "keys"))
	code := m.Run()
	os.RemoveAll(keys)
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestHeapFloorSetting checks $MODRUN_HEAP_FLOOR: a number of MB runs,
// anything else is a usage error naming the variable.
func TestHeapFloorSetting(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: h\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default { add(a, b) { return a + b; } };`), 0o644)
	db := filepath.Join(t.TempDir(), "s.db")
	for _, floor := range []string{"0", "64"} {
		out, errOut, code := runBinary(t, []string{"MODRUN_HEAP_FLOOR=" + floor}, "run", dir, "m.add", "--args", "[1,2]", "--store", db)
		if code != 0 || out != "3\n" {
			t.Fatalf("MODRUN_HEAP_FLOOR=%s: exit %d, out %q, err %q", floor, code, out, errOut)
		}
	}
	_, errOut, code := runBinary(t, []string{"MODRUN_HEAP_FLOOR=lots"}, "run", dir, "m.add", "--args", "[1,2]", "--store", db)
	if code != 2 || !strings.Contains(errOut, `MODRUN_HEAP_FLOOR="lots"`) {
		t.Fatalf("MODRUN_HEAP_FLOOR=lots: exit %d, stderr %q", code, errOut)
	}
}

func TestHeapFloorFromEnvironment(t *testing.T) {
	for env, want := range map[string]uint64{"": 32 << 20, "0": 0, "64": 64 << 20} {
		if got, err := heapFloor(env); err != nil || got != want {
			t.Errorf("MODRUN_HEAP_FLOOR=%q: %d, %v; want %d", env, got, err, want)
		}
	}
	for _, env := range []string{"lots", "-1", "1.5", "99999999999"} {
		if _, err := heapFloor(env); err == nil || !strings.Contains(err.Error(), "MODRUN_HEAP_FLOOR") {
			t.Errorf("MODRUN_HEAP_FLOOR=%q: err = %v", env, err)
		}
	}
}

func TestLongRunningCommands(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"serve", "./pkg"}, true},
		{[]string{"--log-level", "debug", "serve", "--listen", "127.0.0.1:0", "./pkg"}, true},
		{[]string{"bench", "./pkg", "m.f", "-n", "10"}, true},
		{[]string{"run", "./pkg", "m.f"}, false},
		{[]string{"store", "get", "k"}, false},
		{[]string{"serve-me"}, false},
		{nil, false},
	} {
		if got := longRunning(c.args); got != c.want {
			t.Errorf("longRunning(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

// TestServeRunsWithTheMonitorAwake: runner serve execs itself, at start,
// with internal/monitor's setting: the process started is the one
// serving, with the setting in its environment.
func TestServeRunsWithTheMonitorAwake(t *testing.T) {
	s := startServe(t, "tok-0123456789abcdef", "--store", filepath.Join(t.TempDir(), "s.db"), "../../bench/refresh")
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(env), "\x00"), "GODEBUG="+monitor.Setting) {
		t.Fatalf("the serving process's environment lacks GODEBUG=%s", monitor.Setting)
	}
}
