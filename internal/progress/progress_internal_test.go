package progress

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestQuickWorkStaysQuiet(t *testing.T) {
	var buf syncBuffer
	l := start(&buf, func() string { return "half done" }, false, time.Hour, time.Hour)
	l.Stop()
	l.Stop() // twice is harmless
	if buf.String() != "" {
		t.Fatalf("wrote %q for work that ended before the delay", buf.String())
	}
}

func TestLinesWhereNotATerminal(t *testing.T) {
	var buf syncBuffer
	var n atomic.Int64
	l := start(&buf, func() string { return "step " + string(rune('0'+n.Add(1))) }, false, time.Millisecond, time.Millisecond)
	// Wait for three lines, however slow the machine; the deadline only
	// bounds a test that would otherwise hang.
	for deadline := time.Now().Add(30 * time.Second); strings.Count(buf.String(), "\n") < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %q", buf.String())
		}
	}
	l.Stop()
	out := buf.String()
	if !strings.HasPrefix(out, "step 1\nstep 2\nstep 3\n") || strings.Contains(out, "\r") {
		t.Fatalf("output %q: want whole lines, no carriage returns", out)
	}
	after := buf.String()
	time.Sleep(20 * time.Millisecond)
	if buf.String() != after {
		t.Fatal("wrote after stop returned")
	}
}

func TestOneLineOnATerminal(t *testing.T) {
	var buf syncBuffer
	l := start(&buf, func() string { return "working" }, true, time.Millisecond, time.Millisecond)
	for deadline := time.Now().Add(30 * time.Second); strings.Count(buf.String(), "working") < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %q", buf.String())
		}
	}
	// Other output clears the line first: it never lands after "working".
	fmt.Fprintln(l, "a note")
	l.Stop()
	out := buf.String()
	if !strings.HasPrefix(out, "\r\033[Kworking") || !strings.Contains(out, "working\r\033[Ka note\n") || !strings.HasSuffix(out, "\r\033[K") && !strings.HasSuffix(out, "a note\n") {
		t.Fatalf("output %q: want one line rewritten in place, cleared before other output and at the end", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("output %q: only the note ends a line", out)
	}
}
