// The started board: which calls a worker has begun, written by the
// worker into memory its parent shares, read by the parent only when the
// worker is gone or a call overran.

package worker

import (
	"sync/atomic"
)

// EnvBoard names the file descriptor of a worker's started board (a
// shared memory region its parent made); unset: the worker says "started"
// in frames.
const EnvBoard = "MODRUN_WORKER_BOARD"

// boardSlots is how many calls a board holds marks for at once; calls
// beyond it (more in flight on one worker) are announced by frame.
const boardSlots = 4096

// board is a worker's started board: slot i holds the ID of the last call
// the worker began in it. The parent lends each call a free slot (in the
// call frame) and takes it back when the call is answered; the worker
// marks the slot before the call runs, so that the parent, reading it
// after the worker died, never moves a call that may have begun. Before,
// the worker sent a "started" frame for every batch of calls it read:
// one more write, read and wake-up of the parent per request, for news
// the parent needs only when a worker dies or overruns.
//
// A slot is reused only after the call in it was answered or forgotten;
// the worker marks slots in the order the calls reach it, and a call is
// sent before its slot can be freed, so a later call's mark always comes
// after an earlier one's.
type board struct {
	marks []uint64 // shared with the worker
	free  []uint32 // slots not lent (parent side), as indices + 1
	unmap func() error
}

// lend returns a free slot (index + 1) for call id, cleared; 0: none
// free. The caller holds the worker's lock.
func (b *board) lend(id uint64) uint32 {
	if b == nil || len(b.free) == 0 {
		return 0
	}
	s := b.free[len(b.free)-1]
	b.free = b.free[:len(b.free)-1]
	atomic.StoreUint64(&b.marks[s-1], 0)
	return s
}

// give takes slot s back. The caller holds the worker's lock.
func (b *board) give(s uint32) {
	if b != nil && s != 0 {
		b.free = append(b.free, s)
	}
}

// began reports whether the worker marked slot s for call id.
func (b *board) began(s uint32, id uint64) bool {
	return b != nil && s != 0 && atomic.LoadUint64(&b.marks[s-1]) == id
}

// mark records, on the worker's side, that call id in slot s begins. It
// reports false if there is no board or no slot: the call is announced by
// frame.
func (b *board) mark(s uint32, id uint64) bool {
	if b == nil || s == 0 || int(s) > len(b.marks) {
		return false
	}
	atomic.StoreUint64(&b.marks[s-1], id)
	return true
}

func (b *board) close() {
	if b != nil && b.unmap != nil {
		b.unmap()
	}
}

// newFree returns every slot of a board of n, free.
func newFree(n int) []uint32 {
	free := make([]uint32, n)
	for i := range free {
		free[i] = uint32(n - i)
	}
	return free
}
