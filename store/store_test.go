package store_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/engine/enginetest"
	"github.com/modrun/modrun/store"
)

func TestDBConformance(t *testing.T) {
	enginetest.TestStore(t, func(t *testing.T) engine.Store {
		db, err := store.Open(filepath.Join(t.TempDir(), "store.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

func TestMemoryConformance(t *testing.T) {
	enginetest.TestStore(t, func(t *testing.T) engine.Store { return store.NewMemory() })
}

func TestSessionLayer(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := engine.NewSession(db, "app")
	get := func(key string) string {
		t.Helper()
		v, err := s.Get(ctx, key)
		if errors.Is(err, engine.ErrNotFound) {
			return "<none>"
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Set(ctx, "k", json.RawMessage(`"disk"`), true))
	must(s.Set(ctx, "k", json.RawMessage(`"session"`), false))
	if got := get("k"); got != `"session"` {
		t.Fatalf("session value should win: %s", got)
	}
	if v, _ := db.Get(ctx, "app", "k"); string(v) != `"disk"` {
		t.Fatalf("persist=false reached the disk: %s", v)
	}
	must(s.Set(ctx, "k", json.RawMessage(`"disk2"`), true))
	if got := get("k"); got != `"disk2"` {
		t.Fatalf("a persisted write must be read back: %s", got)
	}
	must(s.Set(ctx, "a", json.RawMessage(`1`), false))
	must(s.Set(ctx, "b", json.RawMessage(`2`), true))
	keys, err := s.Keys(ctx)
	must(err)
	if strings.Join(keys, ",") != "a,b,k" {
		t.Fatalf("Keys = %v", keys)
	}
	must(s.Delete(ctx, "a"))
	if got := get("a"); got != "<none>" {
		t.Fatalf("Delete left %s", got)
	}
	must(s.Set(ctx, "c", json.RawMessage(`3`), false))
	must(s.Clear(ctx))
	if got := get("b") + get("c") + get("k"); got != "<none><none><none>" {
		t.Fatalf("Clear left %s", got)
	}
	// A second session of the same app shares persisted values only.
	must(s.Set(ctx, "p", json.RawMessage(`"shared"`), true))
	must(s.Set(ctx, "m", json.RawMessage(`"mine"`), false))
	other := engine.NewSession(db, "app")
	if v, err := other.Get(ctx, "p"); err != nil || string(v) != `"shared"` {
		t.Fatalf("other session: p = %s, %v", v, err)
	}
	if _, err := other.Get(ctx, "m"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a session value leaked to another session: %v", err)
	}
}

// The helper process: when MODRUN_STORE_HELPER is set, the test binary acts
// as a second process instead of running tests.
func TestMain(m *testing.M) {
	switch os.Getenv("MODRUN_STORE_HELPER") {
	case "":
		os.Exit(m.Run())
	case "writers":
		helperWriters(os.Getenv("MODRUN_STORE_PATH"))
	case "hold":
		helperHold(os.Getenv("MODRUN_STORE_PATH"))
	}
	os.Exit(0)
}

// helperWriters runs 64 concurrent writers forever, printing each write
// once Set has returned (acknowledged).
func helperWriters(path string) {
	db, err := store.Open(path, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%02d-%06d", w, i)
				if err := db.Set(context.Background(), "crash", key, json.RawMessage(strconv.Itoa(i))); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(out, "ack", key, i)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func helperHold(path string) {
	db, err := store.Open(path, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("open")
	// Hold the file until the parent closes our stdin.
	bufio.NewReader(os.Stdin).ReadString('\n')
	db.Close()
}

func helper(t *testing.T, mode, path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MODRUN_STORE_HELPER="+mode, "MODRUN_STORE_PATH="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	cmd := helper(t, "writers", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 3000 {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			t.Fatalf("helper said %q", sc.Text())
		}
		acked[f[1]] = f[2]
	}
	// Kill mid-way: writers are still running and commits are in flight.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Acknowledgements already written to the pipe count too.
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			acked[f[1]] = f[2]
		}
	}
	cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("only %d acknowledged writes before the kill", len(acked))
	}

	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer db.Close()
	all, err := db.List(context.Background(), "crash")
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for k, v := range acked {
		if string(all[k]) != v {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes lost after SIGKILL", missing, len(acked))
	}
	t.Logf("%d acknowledged writes, %d on disk, none lost", len(acked), len(all))
}

func TestSecondProcessWaitsThenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	cmd := helper(t, "hold", path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "open\n" {
		t.Fatalf("helper: %q", line)
	}

	start := time.Now()
	_, err := store.Open(path, &store.Options{Timeout: 300 * time.Millisecond})
	waited := time.Since(start)
	if !errors.Is(err, engine.ErrLocked) {
		t.Fatalf("Open of a held file: err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another process") {
		t.Errorf("the error should name the file and the cause: %v", err)
	}
	if waited < 250*time.Millisecond {
		t.Errorf("gave up after %s, want about the 300ms timeout", waited)
	}

	// Once the holder lets go, the file opens.
	stdin.Close()
	cmd.Wait()
	db, err := store.Open(path, &store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open after release: %v", err)
	}
	db.Close()
}

func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	db, err := store.Open(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		db.Set(context.Background(), "app", fmt.Sprint("k", i), json.RawMessage(`"`+strings.Repeat("x", 100)+`"`))
	}
	db.Close()
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}

	cases := map[string][]byte{
		"garbage":   []byte(strings.Repeat("this is not a bbolt file\n", 1000)),
		"empty":     {},
		"truncated": data[:len(data)/3],
		"half":      data[:len(data)/2],
		"headonly":  data[:100],
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(path, &store.Options{Timeout: time.Second})
			if name == "empty" {
				// bbolt initialises an empty file as a new store.
				if err != nil {
					t.Fatalf("an empty file should open as a new store: %v", err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				t.Fatalf("a %s file opened as a store", name)
			}
			if !errors.Is(err, engine.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Errorf("want ErrCorrupt naming the file, got: %v", err)
			}
		})
	}
}

func TestUnwritableLocation(t *testing.T) {
	// Tests run as root in CI, which ignores permission bits; a path under a
	// regular file is unwritable for everyone.
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	_, err := store.Open(filepath.Join(file, "sub", "store.db"), nil)
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("Open under a regular file: %v", err)
	}
}

func TestMissingParentIsCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "store.db")
	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestSessionSetAsync(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := engine.NewSession(db, "app")
	var waits []func() error
	for i := range 100 {
		waits = append(waits, s.SetAsync(ctx, "k", json.RawMessage(strconv.Itoa(i))))
		// Visible through the session at once, durable or not.
		if v, err := s.Get(ctx, "k"); err != nil || string(v) != strconv.Itoa(i) {
			t.Fatalf("after SetAsync %d: %s %v", i, v, err)
		}
	}
	for _, w := range waits {
		if err := w(); err != nil {
			t.Fatal(err)
		}
	}
	// Queued in order, so the last write wins on disk.
	if v, _ := db.Get(ctx, "app", "k"); string(v) != "99" {
		t.Fatalf("on disk: %s", v)
	}
	if err := s.SetAsync(ctx, "bad", json.RawMessage(`{`))(); !errors.Is(err, engine.ErrInvalidValue) {
		t.Fatalf("invalid JSON: %v", err)
	}
	if _, err := s.Get(ctx, "bad"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a rejected value is visible: %v", err)
	}
}

// TestTruncatedWhileOpen: the file cut short under a running store makes
// writes and reads fail with ErrCorrupt, and Close return, instead of a
// hang in Close (a fault during rollback used to leave bbolt's lock held).
func TestTruncatedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big := json.RawMessage(`"` + strings.Repeat("x", 60000) + `"`)
	for i := range 50 {
		if err := db.Set(ctx, "a", fmt.Sprintf("k%d", i), big); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Truncate(path, 8192); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			db.Set(ctx, "a", fmt.Sprintf("n%d", i), big)
			db.Get(ctx, "a", fmt.Sprintf("k%d", i))
		}
		err := db.Set(ctx, "a", "last", big)
		if !errors.Is(err, engine.ErrCorrupt) {
			t.Errorf("Set after truncation: %v, want ErrCorrupt", err)
		}
		db.Close()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("hung after the file was truncated")
	}
}
