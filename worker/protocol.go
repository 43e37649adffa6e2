package worker

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/modrun/modrun/engine"
)

// Operations of the protocol. Requests carry ID; replies carry Re, the ID
// they answer.
const (
	opLoad         = "load"          // parent → worker: an instance's package, app, inputs
	opCall         = "call"          // parent → worker: run a target
	opUnload       = "unload"        // parent → worker: an instance was closed; release it
	opStarted      = "started"       // worker → parent: a call began
	opDying        = "dying"         // worker → parent: exiting, and why
	opLog          = "log"           // worker → parent: a log record
	opStore        = "store"         // worker → parent: a store operation
	opFlightJoin   = "flight.join"   // worker → parent
	opFlightFinish = "flight.finish" // worker → parent: a leader's result
	opFlightResult = "flight.result" // parent → worker: a follower's result
	opQuery        = "query"         // worker → parent: a query's outcome, for metrics
	opToken        = "token"         // worker → parent: an OAuth2 token request's outcome
)

// message is one frame. Which fields are set depends on Op.
type message struct {
	ID  uint64   `json:"id,omitempty"`
	Re  uint64   `json:"re,omitempty"`
	IDs []uint64 `json:"ids,omitempty"` // a started frame's calls
	Op  string   `json:"op,omitempty"`

	Inst    uint64            `json:"inst,omitempty"` // instance id
	Files   map[string][]byte `json:"files,omitempty"`
	App     string            `json:"app,omitempty"`
	Inputs  map[string]any    `json:"inputs,omitempty"`
	Target  string            `json:"target,omitempty"`
	Args    []json.RawMessage `json:"args,omitempty"`
	Timeout int64             `json:"timeoutMs,omitempty"`
	// Deadline is a call's deadline in Unix milliseconds: a call read
	// after it (its worker was busy) is answered without running.
	Deadline int64 `json:"deadline,omitempty"`
	// Queue is a call's: run it even if its instance's loop is busy (the
	// last worker it can go to).
	Queue bool `json:"queue,omitempty"`
	Locks bool `json:"locks,omitempty"` // a load's: the parent's store locks across processes
	// LockTTL is a load's: the lease of the parent's locks in ms
	// (engine.Leased); 0: not known.
	LockTTL int64 `json:"lockTTL,omitempty"`
	// Trace is a call's W3C traceparent: the worker's spans (queries,
	// token requests) join the run's trace.
	Trace string `json:"trace,omitempty"`
	// Run is a call's run id (runlog): the worker's log records of the
	// call carry it back, so that a server keeps each run's own lines.
	Run string `json:"run,omitempty"`

	Store  string                     `json:"store,omitempty"` // get, set, delete, list, clear, cas
	Key    string                     `json:"key,omitempty"`
	Value  json.RawMessage            `json:"value,omitempty"`
	Old    json.RawMessage            `json:"old,omitempty"`
	Values map[string]json.RawMessage `json:"values,omitempty"`
	OK     bool                       `json:"ok,omitempty"`

	Result json.RawMessage `json:"result,omitempty"`
	Err    *wireError      `json:"err,omitempty"`

	Level int               `json:"level,omitempty"`
	Msg   string            `json:"msg,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// wireError is an error across the pipe, with what callers branch on.
type wireError struct {
	Msg    string `json:"msg"`
	Kind   string `json:"kind,omitempty"` // deadline, closed, memory, notfound, invalidkey, invalidvalue, toolarge, unavailable; busy: a call not started
	Module string `json:"module,omitempty"`
	Status int    `json:"status,omitempty"`
}

var kinds = []struct {
	name string
	err  error
}{
	{"deadline", engine.ErrDeadline}, {"closed", engine.ErrClosed}, {"memory", engine.ErrMemoryLimit},
	{"notfound", engine.ErrNotFound}, {"invalidkey", engine.ErrInvalidKey}, {"invalidvalue", engine.ErrInvalidValue},
	{"toolarge", engine.ErrValueTooLarge}, {"unavailable", engine.ErrUnavailable},
}

// toWire encodes err; redact hides secrets in its message.
func toWire(err error, redact func(string) string) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Msg: redact(err.Error())}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			w.Kind = k.name
			break
		}
	}
	var re *engine.ResponseError
	if errors.As(err, &re) {
		w.Module = re.Module
		if re.Response != nil {
			w.Status = re.Response.StatusCode
		}
	}
	return w
}

// remoteError is an error that came across the pipe.
type remoteError struct{ w wireError }

func (e *remoteError) Error() string { return e.w.Msg }

// Is matches the engine's sentinel errors the message stood for.
func (e *remoteError) Is(target error) bool {
	for _, k := range kinds {
		if k.name == e.w.Kind && target == k.err {
			return true
		}
	}
	return false
}

// Unwrap gives a failed query's module and status as a ResponseError.
func (e *remoteError) Unwrap() error {
	if e.w.Module == "" {
		return nil
	}
	re := &engine.ResponseError{Module: e.w.Module, Cause: e.w.Msg}
	if e.w.Status != 0 {
		re.Response = &engine.Response{StatusCode: e.w.Status}
	}
	return re
}

func fromWire(w *wireError) error {
	if w == nil {
		return nil
	}
	return &remoteError{*w}
}

// MaxFrame bounds one frame: a package's files travel in one.
const MaxFrame = 256 << 20

// conn reads and writes frames; writes are safe for concurrent use.
type conn struct {
	r  *bufio.Reader
	mu sync.Mutex
	w  *bufio.Writer
	c  io.Closer
}

func newConn(r io.Reader, w io.Writer, c io.Closer) *conn {
	return &conn{r: bufio.NewReaderSize(r, 64<<10), w: bufio.NewWriterSize(w, 64<<10), c: c}
}

func (c *conn) send(m *message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := c.w.Write(n[:]); err != nil {
		return err
	}
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	return c.w.Flush()
}

// buffered reports whether what was read holds more of the next frame:
// reading it costs no wait.
func (c *conn) buffered() bool { return c.r.Buffered() > 0 }

// readFrame reads size bytes, allocating at most a megabyte more than
// have arrived.
func readFrame(r io.Reader, size int) ([]byte, error) {
	const step = 1 << 20
	b := make([]byte, min(size, step))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	for len(b) < size {
		n := min(size-len(b), step)
		b = append(b, make([]byte, n)...)
		if _, err := io.ReadFull(r, b[len(b)-n:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

func (c *conn) recv() (*message, error) {
	var n [4]byte
	if _, err := io.ReadFull(c.r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > MaxFrame {
		return nil, fmt.Errorf("a frame of %d bytes, over %d", size, MaxFrame)
	}
	// Memory grows with the bytes that arrive, not with the length the
	// other side claims: past a megabyte a frame is read in megabyte steps.
	b, err := readFrame(c.r, int(size))
	if err != nil {
		return nil, err
	}
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("a frame that is not a message: %w", err)
	}
	return &m, nil
}
