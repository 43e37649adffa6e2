// Command runner runs modrun packages: query and JS modules, the store,
// publishing and the registry. See DESIGN §8 or runner --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/internal/monitor"
	"github.com/modrun/modrun/internal/redact"
)

func main() {
	// A worker process of an isolated engine (runner serve, run
	// --isolate) serves its parent and exits here.
	modrun.WorkerMain()
	if longRunning(os.Args[1:]) {
		// The runtime's monitor of a server or a benchmark stays
		// awake (internal/monitor); if the exec fails, the runner
		// goes on as it was started.
		_ = monitor.Reexec()
	}
	floor, err := heapFloor(os.Getenv("MODRUN_HEAP_FLOOR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(2)
	}
	// Set here, not in run: tests call run in-process.
	modrun.SetHeapFloor(floor)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// heapFloor is the heap in bytes the GC lets the runner reach before it
// collects, from $MODRUN_HEAP_FLOOR in MB (empty: modrun.DefaultHeapFloor;
// 0: off). A runner's live heap is a few MB and almost all it allocates is
// short-lived JS machinery, so under GOGC=100 it collected every ~150 runs
// and spent 13% of its CPU on it. GOGC or GOMEMLIMIT in the environment
// take precedence (see modrun.SetHeapFloor).
func heapFloor(env string) (uint64, error) {
	if env == "" {
		return modrun.DefaultHeapFloor, nil
	}
	mb, err := strconv.ParseUint(env, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("MODRUN_HEAP_FLOOR=%q: want a number of MB (0: off)", env)
	}
	return mb << 20, nil
}

// longRunning reports whether args run a command that keeps the runner
// going under load: serve and bench.
func longRunning(args []string) bool {
	if !slices.Contains(args, "serve") && !slices.Contains(args, "bench") {
		return false // most starts: no need to build the commands (0.4 ms)
	}
	cmd, _, err := (&cli{redact: redact.New()}).root().Find(args)
	return err == nil && (cmd.Name() == "serve" || cmd.Name() == "bench")
}
