// Command runner runs modrun packages: query and JS modules, the store,
// publishing and the registry. See DESIGN §8 or runner --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/modrun/modrun"
)

func main() {
	if err := heapFloor(); err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// heapFloor keeps the GC from collecting before the heap reaches
// $MODRUN_HEAP_FLOOR MB (default 32; 0 turns it off). A runner's live heap
// is a few MB and almost all it allocates is short-lived JS machinery, so
// under GOGC=100 it collected every ~150 runs and spent 13% of its CPU on
// it. GOGC or GOMEMLIMIT in the environment take precedence. It is set
// here, not in run: tests call run in-process.
func heapFloor() error {
	mb := uint64(modrun.DefaultHeapFloor >> 20)
	if s := os.Getenv("MODRUN_HEAP_FLOOR"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("MODRUN_HEAP_FLOOR=%q: want a number of MB (0: off)", s)
		}
		mb = n
	}
	modrun.SetHeapFloor(mb << 20)
	return nil
}
