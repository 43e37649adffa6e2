package worker

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/modrun/modrun/engine"
)

// op is a frame's operation.
type op string

// Operations of the protocol. Requests carry ID; answers carry Re, the ID
// they answer, and an answer payload.
const (
	opLoad         op = "load"          // parent → worker: an instance's package, app, inputs (load)
	opCall         op = "call"          // parent → worker: run a target (call); worker → parent: its answer
	opUnload       op = "unload"        // parent → worker: an instance was closed; release it
	opStarted      op = "started"       // worker → parent: calls began (started)
	opDying        op = "dying"         // worker → parent: exiting, and why (answer.err)
	opLog          op = "log"           // worker → parent: a log record (log)
	opStore        op = "store"         // worker → parent: a store operation (store)
	opFlightJoin   op = "flight.join"   // worker → parent (flight)
	opFlightFinish op = "flight.finish" // worker → parent: a leader's result (flight, answer)
	opFlightResult op = "flight.result" // parent → worker: a follower's result (answer)
	opQuery        op = "query"         // worker → parent: a query's outcome, for metrics (query)
	opToken        op = "token"         // worker → parent: an OAuth2 token request's outcome (token)
)

// message is one frame: a header, and the payload of its operation in the
// field named after it. A frame is decoded once, payload included.
type message struct {
	ID   uint64 `json:"id,omitempty"`
	Re   uint64 `json:"re,omitempty"`
	Op   op     `json:"op,omitempty"`
	Inst uint64 `json:"inst,omitempty"` // the instance; a flight's or a lock's join ID

	Load    *loadFrame  `json:"load,omitempty"`
	Call    *callFrame  `json:"call,omitempty"`
	Started []uint64    `json:"started,omitempty"` // the calls begun
	Store   *storeFrame `json:"store,omitempty"`
	Log     *logFrame   `json:"log,omitempty"`
	Query   *queryFrame `json:"query,omitempty"`
	Token   *tokenFrame `json:"token,omitempty"`
	Flight  string      `json:"flight,omitempty"` // a flight's key
	Answer  *answer     `json:"answer,omitempty"`
}

// loadFrame is an instance's package and what it runs with.
type loadFrame struct {
	Files  map[string][]byte `json:"files"`
	App    string            `json:"app"`
	Inputs map[string]any    `json:"inputs,omitempty"`
	Locks  bool              `json:"locks,omitempty"` // the parent's store locks across processes
	// LockTTL is the lease of the parent's locks in ms (engine.Leased);
	// 0: not known.
	LockTTL int64 `json:"lockTTL,omitempty"`
}

// callFrame is a call of a target.
type callFrame struct {
	Target  string            `json:"target"`
	Args    []json.RawMessage `json:"args,omitempty"`
	Timeout int64             `json:"timeoutMs,omitempty"`
	// Deadline is the call's deadline in Unix milliseconds: a call read
	// after it (its worker was busy) is answered without running.
	Deadline int64 `json:"deadline,omitempty"`
	// Queue: run it even if its instance's loop is busy (the last worker
	// it can go to).
	Queue bool `json:"queue,omitempty"`
	// Trace is the call's W3C traceparent: the worker's spans (queries,
	// token requests) join the run's trace.
	Trace string `json:"trace,omitempty"`
	// Run is the call's run id (runlog): the worker's log records of the
	// call carry it back, so that a server keeps each run's own lines.
	Run string `json:"run,omitempty"`
	// Slot is the call's slot on the worker's started board (index + 1;
	// 0: none, the worker announces the call by frame).
	Slot uint32 `json:"slot,omitempty"`
}

// storeFrame is a store operation: get, set, delete, list, clear, cas,
// lock, unlock.
type storeFrame struct {
	Op    string          `json:"op"`
	App   string          `json:"app,omitempty"`
	Key   string          `json:"key,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
	Old   json.RawMessage `json:"old,omitempty"`
}

// logFrame is a log record.
type logFrame struct {
	Level int               `json:"level"`
	Msg   string            `json:"msg"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// queryFrame is a query's outcome: its module and HTTP status (0: none).
type queryFrame struct {
	Module string `json:"module"`
	Status int    `json:"status,omitempty"`
}

// tokenFrame is an OAuth2 token request's outcome.
type tokenFrame struct {
	Credential string `json:"credential"`
	Grant      string `json:"grant"`
	Outcome    string `json:"outcome"`
}

// answer is what an answer, a flight's result or a dying worker carries.
type answer struct {
	Result json.RawMessage            `json:"result,omitempty"` // a call's or a flight's
	Value  json.RawMessage            `json:"value,omitempty"`  // a store get's
	Values map[string]json.RawMessage `json:"values,omitempty"` // a store list's
	OK     bool                       `json:"ok,omitempty"`     // a cas's; a flight join's: the joiner leads
	Err    *wireError                 `json:"err,omitempty"`
}

// answered returns m's answer; an answer frame without one (nothing to
// say: a success) reads as an empty one.
func (m *message) answered() *answer {
	if m.Answer == nil {
		return &answer{}
	}
	return m.Answer
}

// wellFormed reports whether m carries the payload its operation needs:
// a frame without it breaks the protocol (a worker that sends one is
// stopped; a parent's ends the worker).
func (m *message) wellFormed() bool {
	switch m.Op {
	case opLoad:
		return m.Load != nil
	case opCall:
		return m.Call != nil || m.Re != 0
	case opStore:
		return m.Store != nil
	case opLog:
		return m.Log != nil
	case opQuery:
		return m.Query != nil
	case opToken:
		return m.Token != nil
	case opFlightJoin, opFlightFinish:
		return m.Flight != ""
	case opStarted, opUnload, opDying, opFlightResult, "":
		return true
	}
	return false
}

// errorAnswer is an answer holding err, redacted by redact.
func errorAnswer(err error, redact func(string) string) *answer {
	return &answer{Err: toWire(err, redact)}
}

// plain is the redaction of messages that hold no secret.
func plain(s string) string { return s }

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

	due      bool        // posted frames wait in w
	flush    *time.Timer // flushes them within postDelay
	flushing bool        // a sendTogether flush is coming
}

// postDelay is the longest a posted frame waits for another to go with.
const postDelay = 50 * time.Millisecond

func newConn(r io.Reader, w io.Writer, c io.Closer) *conn {
	return &conn{r: bufio.NewReaderSize(r, 64<<10), w: bufio.NewWriterSize(w, 64<<10), c: c}
}

// send writes m and flushes it, with any frame posted before it: it has
// left when send returns (a dying worker's last word needs that).
func (c *conn) send(m *message) error { return c.put(m, now) }

// sendTogether writes m and flushes it once the goroutines ready to run
// have had their turn: calls that requests made at once, or answers that
// settled together (one loop batch of the worker ends several runs),
// cross in one write and wake the other side once. The first sender of
// such a group yields, then flushes what the others added meanwhile; they
// return at once. A frame sent alone leaves when its sender runs again,
// after the goroutines ready before it; nothing waits on a timer. Its
// error is the flush's; the others' is only their frame's (a failed flush
// means the pipe is gone, and with it the worker: the parent then fails
// or moves the calls it had).
func (c *conn) sendTogether(m *message) error { return c.put(m, together) }

// post writes m without flushing it: it goes with the next frame sent,
// or within postDelay. For news the other side needs soon, not at once
// (a query's outcome, for the metrics): on a served request it crosses
// with the call's answer, one write and one wake-up of the parent fewer.
// Frames keep their order. A worker that dies loses what it posted in
// the last postDelay.
func (c *conn) post(m *message) error { return c.put(m, later) }

// when is when put flushes a frame.
type when int

const (
	now      when = iota // before put returns
	together             // after the goroutines ready to run (sendTogether)
	later                // with the next frame, or within postDelay (post)
)

// put buffers m with its length and flushes it (with what is buffered
// before it) when at says.
func (c *conn) put(m *message, at when) error {
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
	switch {
	case at == now:
	case at == later:
		if !c.due {
			c.due = true
			if c.flush == nil {
				c.flush = time.AfterFunc(postDelay, c.flushPosted)
			} else {
				c.flush.Reset(postDelay)
			}
		}
		return nil
	case c.flushing:
		return nil // the sender that yielded flushes it
	default:
		c.flushing = true
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
		c.flushing = false
	}
	c.due = false
	return c.w.Flush()
}

func (c *conn) flushPosted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.due {
		c.due = false
		c.w.Flush()
	}
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
