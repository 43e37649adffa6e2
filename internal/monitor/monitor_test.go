package monitor

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestEnv(t *testing.T) {
	for _, c := range []struct {
		env   []string
		want  string // the GODEBUG the process gets
		awake bool
	}{
		{nil, Setting, true},
		{[]string{"HOME=/root"}, Setting, true},
		{[]string{"GODEBUG=madvdontneed=1"}, "madvdontneed=1," + Setting, true},
		{[]string{"GODEBUG=x=1", "A=b", "GODEBUG=y=2"}, "x=1," + Setting, true},
		{[]string{"GODEBUG=", "A=b"}, Setting, true},
		{[]string{"GODEBUG=schedtrace=0"}, "schedtrace=0", false},
		{[]string{"GODEBUG=schedtrace=1000,gctrace=1"}, "schedtrace=1000,gctrace=1", false},
		{[]string{"GODEBUG=" + Setting}, Setting, true},
		{[]string{"GODEBUG=" + Setting + ", schedtrace=5"}, Setting + ", schedtrace=5", false},
	} {
		given := slices.Clone(c.env)
		env, awake := Env(given)
		var got []string
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
				got = append(got, v)
			}
		}
		if len(got) != 1 || got[0] != c.want || awake != c.awake {
			t.Errorf("Env(%q): GODEBUG %q, awake %v; want one, %q, and %v", c.env, got, awake, c.want, c.awake)
		}
		if !slices.Equal(given, c.env) {
			t.Errorf("Env(%q) changed the environment given", c.env)
		}
	}
}

// filtered is what Filter should pass on of s: every line but those that
// begin with traceLine.
func filtered(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(line, traceLine) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// through writes s to a Filter in the chunks cut says, and returns what
// it passed on. A trailing line that may still begin a trace line is held.
func through(s string, cut []int) string {
	var out bytes.Buffer
	f := &Filter{W: &out}
	rest := s
	for _, n := range cut {
		n = min(n, len(rest))
		if w, err := f.Write([]byte(rest[:n])); w != n || err != nil {
			panic(fmt.Sprintf("Write = %d, %v", w, err))
		}
		rest = rest[n:]
	}
	f.Write([]byte(rest))
	return out.String()
}

func TestFilter(t *testing.T) {
	const in = "goroutine 1 [running]:\nSCHED 2147483647ms: gomaxprocs=2 idleprocs=2\nSCHE is not it\n\nSCHEDULE\nS\nmain.main()\n"
	want := filtered(in)
	if strings.Contains(want, "gomaxprocs") || !strings.Contains(want, "SCHE is not it\n\nSCHEDULE\nS\nmain.main()\n") {
		t.Fatalf("the test's own filter is wrong: %q", want)
	}
	for size := 1; size <= len(in); size++ {
		var cut []int
		for range len(in)/size + 1 {
			cut = append(cut, size)
		}
		if got := through(in, cut); got != want {
			t.Fatalf("written %d bytes at a time: %q, want %q", size, got, want)
		}
	}
}

func FuzzFilter(f *testing.F) {
	f.Add("panic: x\nSCHED 0ms: a\nb\n", uint8(3))
	f.Add("SCHED \nSCHED\nSCHEDX\n", uint8(1))
	f.Add("\n\nS", uint8(7))
	f.Fuzz(func(t *testing.T, s string, size uint8) {
		s += "\n" // a last line ends: a partial one may be held
		n := int(size%16) + 1
		var cut []int
		for range len(s)/n + 1 {
			cut = append(cut, n)
		}
		if got, want := through(s, cut), filtered(s); got != want {
			t.Fatalf("in chunks of %d: %q, want %q", n, got, want)
		}
	})
}

// TestReexec: the process started without the setting execs itself with
// it, keeping its process ID and arguments; started with a schedtrace of
// its own, it is left alone.
func TestReexec(t *testing.T) {
	if os.Getenv("MONITOR_TEST_CHILD") == "1" {
		if err := Reexec(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		set, _ := schedtrace(os.Getenv("GODEBUG"))
		fmt.Printf("pid=%d godebug=%s awake=%v\n", os.Getpid(), os.Getenv("GODEBUG"), set == Setting)
		os.Exit(0)
	}
	for _, c := range []struct{ godebug, want string }{
		{"", "godebug=" + Setting + " awake=true"},
		{"gctrace=0", "godebug=gctrace=0," + Setting + " awake=true"},
		{"schedtrace=0", "godebug=schedtrace=0 awake=false"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReexec$", "-test.timeout=60s")
		cmd.Env = append(os.Environ(), "GODEBUG="+c.godebug, "MONITOR_TEST_CHILD=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("GODEBUG=%q: %v\n%s", c.godebug, err, out.String())
		}
		want := fmt.Sprintf("pid=%d %s\n", cmd.Process.Pid, c.want)
		if out.String() != want {
			t.Errorf("GODEBUG=%q: the child said %q, want %q", c.godebug, out.String(), want)
		}
	}
}
