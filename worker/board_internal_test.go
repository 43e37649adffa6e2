package worker

import (
	"io"
	"runtime"
	"testing"
	"time"
)

// TestBoardIsShared: a mark made through a second mapping of a board's
// memory (as the worker maps it) is what the parent's mapping reads; a
// lent slot starts clear, and a board lends no more slots than it has.
func TestBoardIsShared(t *testing.T) {
	parent, f := newBoard()
	if runtime.GOOS != "linux" {
		if parent != nil {
			t.Fatal("a started board off Linux")
		}
		return
	}
	if f == nil {
		t.Fatal("no started board on Linux")
	}
	defer f.Close()
	defer parent.close()
	child, err := mapBoard(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer child.close()

	s := parent.lend(41)
	if s == 0 {
		t.Fatal("a fresh board lent no slot")
	}
	if parent.began(s, 41) {
		t.Fatal("a call is begun before its worker marked it")
	}
	if !child.mark(s, 41) || !parent.began(s, 41) {
		t.Fatal("the worker's mark is not seen by its parent")
	}
	if parent.began(s, 42) {
		t.Fatal("a slot's mark is read as another call's")
	}
	parent.give(s)
	// The same slot lent again starts clear.
	var again uint32
	for again != s {
		again = parent.lend(43)
		if again == 0 {
			t.Fatal("the slot given back was never lent again")
		}
	}
	if parent.began(s, 41) || parent.began(s, 43) {
		t.Fatal("a slot lent again still holds the mark of its last call")
	}
	for parent.lend(44) != 0 {
	}
	if n := len(parent.free); n != 0 {
		t.Fatalf("%d slots free after lending all", n)
	}
	if child.mark(boardSlots+1, 45) || child.mark(0, 45) {
		t.Fatal("a mark outside the board was taken")
	}
	// A worker cannot shrink the board under its parent (a read past
	// the end would be a SIGBUS in the server).
	if err := f.Truncate(0); err == nil {
		t.Fatal("the board could be shrunk")
	}
	if err := f.Truncate(2 * boardSlots * 8); err == nil {
		t.Fatal("the board could be grown")
	}
}

// TestPostedFramesArrive: a posted frame goes with the next frame sent,
// in order; alone, it goes within postDelay.
func TestPostedFramesArrive(t *testing.T) {
	r, w := io.Pipe()
	out, in := newConn(nil, w, nil), newConn(r, nil, nil)
	got := make(chan *message, 4)
	go func() {
		for {
			m, err := in.recv()
			if err != nil {
				close(got)
				return
			}
			got <- m
		}
	}()
	recv := func(want op) {
		t.Helper()
		select {
		case m := <-got:
			if m.Op != want {
				t.Fatalf("got a %q frame, want %q", m.Op, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no %q frame", want)
		}
	}
	if err := out.post(&message{Op: opQuery, Query: &queryFrame{Module: "q", Status: 200}}); err != nil {
		t.Fatal(err)
	}
	if err := out.send(&message{Op: opCall, Re: 1}); err != nil {
		t.Fatal(err)
	}
	recv(opQuery)
	recv(opCall)
	// Alone: the timer flushes it.
	if err := out.post(&message{Op: opToken, Token: &tokenFrame{Credential: "c", Grant: "refresh_token", Outcome: "ok"}}); err != nil {
		t.Fatal(err)
	}
	recv(opToken)
	w.Close()
}
