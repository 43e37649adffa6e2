package monitor_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/modrun/modrun/internal/monitor"
)

// A parent starting a worker gives it the setting, and filters the
// trace lines it may print from its standard error.
func ExampleEnv() {
	env, awake := monitor.Env([]string{"GODEBUG=madvdontneed=1"})
	fmt.Println(env[len(env)-1], awake)
	_, awake = monitor.Env([]string{"GODEBUG=schedtrace=0"}) // the operator's choice
	fmt.Println(awake)
	// Output:
	// GODEBUG=madvdontneed=1,schedtrace=2147483647 true
	// false
}

func ExampleFilter() {
	f := &monitor.Filter{W: os.Stdout}
	for _, chunk := range []string{"panic: boom\nSCH", "ED 2147483647ms: gomaxprocs=2\n", "goroutine 1 [running]:\n"} {
		f.Write([]byte(chunk))
	}
	fmt.Println(strings.Repeat("-", 3))
	// Output:
	// panic: boom
	// goroutine 1 [running]:
	// ---
}
