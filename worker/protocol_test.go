package worker

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestNotesRideWithTheNextFrame: a note (a query's outcome) costs no
// write of its own; it goes out just before the next frame, so the parent
// counts a call's queries before it sees the call's reply.
func TestNotesRideWithTheNextFrame(t *testing.T) {
	var out bytes.Buffer
	c := newConn(strings.NewReader(""), &out, nil)
	c.sendLater(&message{Op: opQuery, Inst: 1, Key: "refreshAPI", Level: 200})
	if out.Len() != 0 {
		t.Fatalf("the note was written at once: %q", out.String())
	}
	if err := c.send(&message{Op: opCall, Re: 7}); err != nil {
		t.Fatal(err)
	}
	c.noteTimer.Stop()
	r := newConn(&out, io.Discard, nil)
	first, err := r.recv()
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.Op != opQuery || first.Key != "refreshAPI" || first.Level != 200 || second.Op != opCall || second.Re != 7 {
		t.Fatalf("frames %+v then %+v, want the note then the reply", first, second)
	}
	if _, err := r.recv(); err != io.EOF {
		t.Fatalf("a third frame, or %v: the note went out twice", err)
	}
}

// TestANoteAloneGoesAfterTheDelay: with no frame to ride with, a note is
// written noteDelay after it was sent.
func TestANoteAloneGoesAfterTheDelay(t *testing.T) {
	pr, pw := io.Pipe()
	c := newConn(strings.NewReader(""), pw, nil)
	start := time.Now()
	c.sendLater(&message{Op: opQuery, Inst: 1, Key: "refreshAPI", Level: 503})
	m, err := newConn(pr, io.Discard, nil).recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.Op != opQuery || m.Level != 503 {
		t.Fatalf("got %+v, want the note", m)
	}
	if waited := time.Since(start); waited < noteDelay {
		t.Fatalf("the note came after %v, before its delay of %v", waited, noteDelay)
	}
}
