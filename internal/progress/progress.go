// Package progress shows how far long work has got, on stderr, for the
// runner commands that can take a while (bench, publish, import).
//
// Quick work stays quiet: nothing is shown before Delay. After that, on a
// terminal one line is rewritten in place a few times a second; anywhere
// else (a CI log, a pipe) a whole line is written every Every, so that a
// log shows the work is alive without filling up.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

const (
	// Delay is how long work runs before its progress shows.
	Delay = 2 * time.Second
	// Every is how often a line is written where w is not a terminal.
	Every = 5 * time.Second
	// redraw is how often the line is rewritten on a terminal.
	redraw = 200 * time.Millisecond
)

// Line is the progress of one piece of work, shown on a writer. Other
// output meant for the same writer goes through Line's Write, so that it
// never lands in the middle of the progress line.
type Line struct {
	w      io.Writer
	status func() string
	tty    bool
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu    sync.Mutex
	drawn bool // a status line is on the terminal, not yet ended
}

// Start shows status() on w until Stop: first after Delay, then as the
// package doc says. status is called from another goroutine: it must be
// safe for that (read counters with sync/atomic).
func Start(w io.Writer, status func() string) *Line {
	if isTerminal(w) {
		return start(w, status, true, Delay, redraw)
	}
	return start(w, status, false, Delay, Every)
}

func start(w io.Writer, status func() string, tty bool, delay, every time.Duration) *Line {
	l := &Line{w: w, status: status, tty: tty, done: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		for {
			select {
			case <-l.done:
				return
			case <-t.C:
			}
			l.show()
			t.Reset(every)
		}
	}()
	return l
}

func (l *Line) show() {
	s := l.status()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty {
		fmt.Fprintf(l.w, "\r\033[K%s", s)
		l.drawn = true
	} else {
		fmt.Fprintln(l.w, s)
	}
}

// Write writes p to the writer, first clearing the progress line on a
// terminal (the next update draws it again below).
func (l *Line) Write(p []byte) (int, error) { return l.Wrap(l.w).Write(p) }

// Wrap returns a writer that writes to w, first clearing the progress
// line: for output to another stream of the same terminal (stdout, when
// the line is on stderr).
func (l *Line) Wrap(w io.Writer) io.Writer { return wrapped{l, w} }

type wrapped struct {
	l *Line
	w io.Writer
}

func (x wrapped) Write(p []byte) (int, error) {
	x.l.mu.Lock()
	defer x.l.mu.Unlock()
	x.l.clear()
	return x.w.Write(p)
}

// clear erases a drawn status line; l.mu is held.
func (l *Line) clear() {
	if l.drawn {
		fmt.Fprint(l.w, "\r\033[K")
		l.drawn = false
	}
}

// Stop ends the progress: nothing more is shown once it returns, and a
// line drawn on a terminal is cleared. Calling it again does nothing.
func (l *Line) Stop() {
	l.once.Do(func() {
		close(l.done)
		l.wg.Wait()
		l.mu.Lock()
		l.clear()
		l.mu.Unlock()
	})
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
