//go:build unix

package monitor

import (
	"fmt"
	"os"
	"syscall"
)

// Reexec replaces the process with its own binary started again with the
// same arguments and Setting in its environment (execve: the same process
// ID, the same open descriptors but those closed on exec). It returns nil
// at once if the environment's GODEBUG sets schedtrace already (the
// process was started so, or its operator chose otherwise); otherwise it
// returns only if the exec failed, with why. Call it first thing in main,
// before the process opens or starts anything.
func Reexec() error {
	if _, set := schedtrace(os.Getenv("GODEBUG")); set {
		return nil
	}
	env, _ := Env(os.Environ())
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("keeping the runtime monitor awake: %w", err)
	}
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("keeping the runtime monitor awake: exec %s: %w", exe, err)
	}
	return nil
}
