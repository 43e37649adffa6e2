//go:build unix

package worker

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestInheritedPipesArePolled: a pipe handed over in blocking mode, as a
// worker's standard input and output come, is on the poller once Serve
// has it: a read deadline works (it cannot on a blocking file), and a read
// that waits parks instead of holding a thread in read(2) (issue 33).
func TestInheritedPipesArePolled(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	r, w := inherited(t, pr), inherited(t, pw)
	if err := r.SetReadDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
		t.Fatalf("a blocking pipe took a deadline (%v): the test sees nothing", err)
	}

	in := pollable[any](r).(*os.File)
	defer in.Close()
	if err := in.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatalf("the pipe is not on the poller: %v", err)
	}
	if _, err := in.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a read of an empty pipe past its deadline: %v, want %v", err, os.ErrDeadlineExceeded)
	}
	in.SetReadDeadline(time.Time{})
	out := pollable[any](w).(*os.File)
	defer out.Close()
	if _, err := out.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := in.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("read %q, %v after a write", b, err)
	}
	if got := pollable[any]("not a file"); got != "not a file" {
		t.Fatalf("pollable changed what is not a file: %v", got)
	}
	// Not a pipe (a terminal shares its mode with the shell): unchanged.
	f, err := os.CreateTemp(t.TempDir(), "not-a-pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := pollable(f); got != f {
		t.Fatal("pollable changed a regular file")
	}
}

// inherited returns a copy of f's descriptor as a child finds its
// standard input or output: in blocking mode (os/exec hands a child its
// ends with Fd, which sets it), opened by number.
func inherited(t *testing.T, f *os.File) *os.File {
	t.Helper()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	c := os.NewFile(uintptr(fd), f.Name())
	t.Cleanup(func() { c.Close() })
	return c
}
