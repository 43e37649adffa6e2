// Package runlog ties log records to the run that made them, so that a
// server can show each run's own log lines in its history (the inspector's
// run detail) while they also go to the process's log.
//
// A run's context carries its id (WithID). Handler, in an instance's
// logger, adds run=ID to every record logged with such a context, also in
// a worker process, whose records reach the server with their attributes.
// A Collector in the server's logger keeps the lines of the runs it was
// told to watch.
package runlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Key is the attribute that names a record's run.
const Key = "run"

type ctxKey struct{}

// WithID returns ctx carrying run id.
func WithID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, id)
}

// ID is the run id ctx carries, or "".
func ID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Handler adds run=ID to records logged with a context that carries one.
func Handler(h slog.Handler) slog.Handler { return handler{h} }

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := ID(ctx); id != "" {
		r.AddAttrs(slog.String(Key, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler { return handler{h.Handler.WithAttrs(as)} }
func (h handler) WithGroup(name string) slog.Handler    { return handler{h.Handler.WithGroup(name)} }

// Line is one record of a run's log.
type Line struct {
	At      time.Time `json:"at"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	// Attrs are the record's other attributes as key=value, space
	// separated (package, app and run left out: the run says them).
	Attrs string `json:"attrs,omitempty"`
}

// Limits of what a Collector keeps of one run: the first MaxLines lines,
// each cut at MaxLine bytes; the rest is counted in a last line.
const (
	MaxLines = 100
	MaxLine  = 1024
)

// Collector keeps the log lines of the runs being watched. Its Handler
// wraps the logger whose records it sees; records at info and above are
// built for it whatever the level of the handler it wraps, which gets
// only those it is enabled for.
type Collector struct {
	mu   sync.Mutex
	runs map[string]*kept
}

type kept struct {
	lines   []Line
	dropped int
}

// NewCollector returns a Collector watching no run.
func NewCollector() *Collector { return &Collector{runs: map[string]*kept{}} }

// Watch starts keeping the lines of run id; End stops and returns them.
func (c *Collector) Watch(id string) {
	c.mu.Lock()
	c.runs[id] = &kept{}
	c.mu.Unlock()
}

// End stops watching run id and returns its lines (nil if none).
func (c *Collector) End(id string) []Line {
	c.mu.Lock()
	k := c.runs[id]
	delete(c.runs, id)
	c.mu.Unlock()
	if k == nil {
		return nil
	}
	if k.dropped > 0 {
		k.lines = append(k.lines, Line{At: time.Now(), Level: "INFO",
			Message: fmt.Sprintf("… %d more line(s) not kept (a run keeps its first %d)", k.dropped, MaxLines)})
	}
	return k.lines
}

func (c *Collector) add(id string, r slog.Record, attrs string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.runs[id]
	if k == nil {
		return
	}
	if len(k.lines) >= MaxLines {
		k.dropped++
		return
	}
	k.lines = append(k.lines, Line{At: r.Time, Level: r.Level.String(), Message: cut(r.Message), Attrs: cut(attrs)})
}

func cut(s string) string {
	if len(s) <= MaxLine {
		return s
	}
	return strings.ToValidUTF8(s[:MaxLine], "") + "…"
}

// Handler wraps h: records naming a watched run are kept, and every
// record h is enabled for goes on to h.
func (c *Collector) Handler(h slog.Handler) slog.Handler { return &collecting{c: c, next: h} }

type collecting struct {
	c     *Collector
	next  slog.Handler
	attrs []slog.Attr // from WithAttrs
}

func (h *collecting) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *collecting) Handle(ctx context.Context, r slog.Record) error {
	id := ID(ctx)
	var b strings.Builder
	note := func(a slog.Attr) bool {
		switch a.Key {
		case Key:
			id = a.Value.String()
		case "package", "app":
		default:
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			v := a.Value.String()
			if strings.ContainsAny(v, " \"=") {
				v = fmt.Sprintf("%q", v)
			}
			b.WriteString(a.Key + "=" + v)
		}
		return true
	}
	for _, a := range h.attrs {
		note(a)
	}
	r.Attrs(note)
	if id != "" {
		h.c.add(id, r, b.String())
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *collecting) WithAttrs(as []slog.Attr) slog.Handler {
	return &collecting{c: h.c, next: h.next.WithAttrs(as), attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *collecting) WithGroup(name string) slog.Handler {
	return &collecting{c: h.c, next: h.next.WithGroup(name), attrs: h.attrs}
}
