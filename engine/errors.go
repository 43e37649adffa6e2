package engine

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound is returned by Store.Get and Session.Get when the key has no value.
	ErrNotFound = errors.New("no such key")

	// ErrInvalidKey is returned when a store key is empty or longer than MaxKeyLen.
	ErrInvalidKey = errors.New("invalid key")

	// ErrInvalidValue is returned when a store value is not valid JSON.
	ErrInvalidValue = errors.New("value is not valid JSON")

	// ErrValueTooLarge is returned when a store value exceeds the store's limit.
	ErrValueTooLarge = errors.New("value too large")

	// ErrClosed is returned by a Store, Loop or instance used after Close.
	ErrClosed = errors.New("closed")

	// ErrLocked is returned when a store file is held by another process and
	// the wait for it timed out.
	ErrLocked = errors.New("store is locked by another process")

	// ErrCorrupt is returned when a store file cannot be read as a store.
	ErrCorrupt = errors.New("store file is corrupt")

	// ErrNoStore is returned by a Session without a Store for a write that
	// must persist.
	ErrNoStore = errors.New("no store configured: only storeValue(key, value, false) is available")

	// ErrDeadline is returned when a run exceeded its deadline.
	ErrDeadline = errors.New("run exceeded its deadline")

	// ErrUnavailable is returned when no worker can take a run before its
	// deadline: the workers are restarting after crashes. The run did not
	// start; retrying it later is safe.
	ErrUnavailable = errors.New("no worker available")

	// ErrMemoryLimit is the cause of a run's context when the process
	// hosting it passed its memory limit (see internal/memlimit).
	ErrMemoryLimit = errors.New("run exceeded its memory limit")
)

// SourceError is a problem in a package's source, located by file, line and
// column (line and column are 1-based; 0 means unknown).
type SourceError struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (e *SourceError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf returns a *SourceError for file at line:col.
func Errorf(file string, line, col int, format string, args ...any) *SourceError {
	return &SourceError{File: file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// ResponseError is the error of a query whose request failed: a non-2xx
// status, a timeout, a network error or a response over the size limit.
// Its message names the module and the cause, never credentials or tokens.
type ResponseError struct {
	Module   string    // the query module's name
	Response *Response // the response, or nil when none arrived
	Cause    string    // a short cause: "HTTP 400: invalid_grant", "timeout after 10s"
	Err      error     // the underlying error, if any
}

func (e *ResponseError) Error() string { return e.Module + ": " + e.Cause }

func (e *ResponseError) Unwrap() error { return e.Err }
