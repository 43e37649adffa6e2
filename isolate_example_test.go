package modrun_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/store"
)

// TestMain lets this test binary serve as its own worker process, as a
// program's main does with modrun.WorkerMain.
func TestMain(m *testing.M) {
	modrun.WorkerMain()
	os.Exit(m.Run())
}

// ExampleOptions_isolate runs a package's JS in a worker process: a run
// that allocates without bound ends as an error, and the host and the
// other runs go on. main calls modrun.WorkerMain first, so that the engine
// can start this program again as a worker.
func ExampleOptions_isolate() {
	dir, _ := os.MkdirTemp("", "modrun-isolate")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: iso\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.js"), []byte(`export default {
	greet(name) { return "hello " + name },
	hog() { const a = []; for (;;) a.push(new Array(1e6).fill(0)) },
}`), 0o644)

	eng := modrun.New(modrun.Options{Store: store.NewMemory(), Isolate: true, Workers: 1, MaxMemory: 64 << 20})
	defer eng.Close()
	pkg, err := eng.Load(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	inst, _ := eng.NewInstance(pkg, modrun.InstanceOptions{})
	defer inst.Close()
	_, err = inst.Call(context.Background(), "m.hog")
	fmt.Println(err)
	out, err := inst.Call(context.Background(), "m.greet", []byte(`"Ada"`))
	fmt.Println(string(out), err)
	// Output:
	// m.hog: run exceeded its memory limit (64 MiB)
	// "hello Ada" <nil>
}
