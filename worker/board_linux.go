package worker

import (
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newBoard makes a started board in shared memory (memfd) and returns it
// with the file to hand the worker. A board that cannot be made is not
// an error: the worker announces its calls by frame, as before boards.
//
// The memory is sealed at its size: a worker is not trusted (DESIGN §17),
// and one that shrank the file would make the parent's next read of the
// board a SIGBUS, a crash of the server. A worker can still write any
// mark, which is no more than it could say in frames.
func newBoard() (*board, *os.File) {
	fd, err := unix.MemfdCreate("modrun-started", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, nil
	}
	f := os.NewFile(uintptr(fd), "modrun-started")
	b, err := mapBoard(fd)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL)
		if err != nil {
			b.close()
		}
	}
	if err != nil {
		f.Close()
		return nil, nil
	}
	b.free = newFree(boardSlots)
	return b, f
}

// mapBoard maps the board in memfd fd, sizing it first if it is empty.
func mapBoard(fd int) (*board, error) {
	const size = boardSlots * 8
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Size == 0 {
		if err := unix.Ftruncate(fd, size); err != nil {
			return nil, err
		}
	} else if st.Size != size {
		return nil, fmt.Errorf("a started board of %d bytes, want %d", st.Size, size)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	marks := unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), boardSlots)
	return &board{marks: marks, unmap: func() error { return unix.Munmap(mem) }}, nil
}

// openBoard maps, in a worker, the board its parent named in EnvBoard;
// nil (frames) if there is none.
func openBoard() (*board, error) {
	v := os.Getenv(EnvBoard)
	if v == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: not a file descriptor", EnvBoard, v)
	}
	b, err := mapBoard(fd)
	if err != nil {
		return nil, fmt.Errorf("mapping the started board (%s=%d): %w", EnvBoard, fd, err)
	}
	unix.Close(fd) // the mapping stays
	return b, nil
}
