package modtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/modrun/modrun/engine"
)

// Options configure Run.
type Options struct {
	// NewInstance makes the instance a case runs on: pkg bound to app,
	// inputs and st, sending every HTTP request (queries and token
	// requests) through rt. Required.
	NewInstance func(pkg *engine.Package, app string, inputs map[string]any, st engine.Store, rt http.RoundTripper) (engine.Instance, error)
	// NewStore returns a fresh, empty store for each case. Required.
	NewStore func() engine.Store
	// Record sends requests to the real APIs (through Transport) and
	// rewrites each case's cassette; without it, cases replay.
	Record bool
	// Transport is what Record sends with. Nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Match runs only the cases whose name it matches. Nil runs all.
	Match *regexp.Regexp
	// Inputs are given to every case, over its own inputs.
	Inputs map[string]any
	// Timeout bounds each case. Zero means 30 s.
	Timeout time.Duration
}

// Result is a case's outcome.
type Result struct {
	Case     Case
	Err      error // nil: passed
	Duration time.Duration
	Recorded int // with Options.Record: the interactions written
}

// Run runs cases of pkg, whose directory is dir (cassettes live there).
// Each case gets a fresh store and a fresh instance.
func Run(ctx context.Context, dir string, pkg *engine.Package, cases []Case, opts Options) []Result {
	var out []Result
	for _, c := range cases {
		if opts.Match != nil && !opts.Match.MatchString(c.Name) {
			continue
		}
		start := time.Now()
		n, err := runCase(ctx, dir, pkg, c, opts)
		out = append(out, Result{Case: c, Err: err, Duration: time.Since(start), Recorded: n})
	}
	return out
}

func runCase(ctx context.Context, dir string, pkg *engine.Package, c Case, opts Options) (int, error) {
	given := map[string]any{}
	for k, v := range c.Inputs {
		given[k] = v
	}
	for k, v := range opts.Inputs {
		given[k] = v
	}
	inputs, err := pkg.ResolveInputs(given)
	if err != nil {
		return 0, err
	}
	app := c.App
	if app == "" {
		app = pkg.Manifest.Name
	}
	st := opts.NewStore()
	defer st.Close()
	for k, v := range c.Store {
		if err := st.Set(ctx, app, k, v); err != nil {
			return 0, fmt.Errorf("store %s: %w", k, err)
		}
	}
	// Secret inputs and URLs become placeholders in the cassette, so that
	// it holds no secret and replays against any base URL.
	named := map[string]string{}
	secret := map[string]bool{}
	for _, s := range pkg.Secrets(inputs) {
		secret[s] = true
	}
	for name, v := range inputs {
		s, ok := v.(string)
		if ok && (secret[s] || strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")) {
			named[name] = s
		}
	}
	tr := &transport{ph: newPlaceholders(named), cassette: &Cassette{}}
	path := filepath.Join(dir, filepath.FromSlash(Cassettes), Slug(c.Name)+".yaml")
	if opts.Record {
		tr.real = opts.Transport
		if tr.real == nil {
			tr.real = http.DefaultTransport
		}
	} else {
		cas, err := ReadCassette(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		if cas != nil {
			tr.cassette = cas
			// Tokens the recording held are placeholders already.
		}
		tr.used = make([]bool, len(tr.cassette.Interactions))
	}
	inst, err := opts.NewInstance(pkg, app, inputs, st, tr)
	if err != nil {
		return 0, err
	}
	defer inst.Close()
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, b := range c.Before {
		if _, err := inst.Call(cctx, b); err != nil {
			return 0, fmt.Errorf("before %s: %s", b, inst.Redact(err.Error()))
		}
	}
	var args []json.RawMessage
	switch {
	case c.Params != nil:
		args = []json.RawMessage{c.Params}
	default:
		args = c.Args
	}
	got, callErr := inst.Call(cctx, c.Run, args...)
	if opts.Record {
		sealed := tr.sealed()
		if err := sealed.Write(path); err != nil {
			return 0, err
		}
		if err := check(c, st, app, got, callErr, tr.ph.apply, inst.Redact); err != nil {
			return len(sealed.Interactions), err
		}
		return len(sealed.Interactions), nil
	}
	if err := check(c, st, app, got, callErr, tr.ph.apply, inst.Redact); err != nil {
		return 0, err
	}
	if n := tr.unused(); n > 0 {
		return 0, fmt.Errorf("%d recorded request(s) were not made (the cassette is stale: runner test --record)", n)
	}
	return 0, nil
}

// check compares a case's outcome with its expectations; values are
// compared with their tokens and secrets as placeholders (a recording run
// sees the real ones).
func check(c Case, st engine.Store, app string, got json.RawMessage, callErr error, ph func(string) string, redact func(string) string) error {
	switch {
	case c.Expect.Error != "":
		if callErr == nil {
			return fmt.Errorf("want an error containing %q, got result %s", c.Expect.Error, ph(string(got)))
		}
		if msg := ph(redact(callErr.Error())); !strings.Contains(msg, c.Expect.Error) {
			return fmt.Errorf("want an error containing %q, got: %s", c.Expect.Error, msg)
		}
	case callErr != nil:
		return fmt.Errorf("%s", ph(redact(callErr.Error())))
	case c.Expect.Result != nil:
		if ok, why := subset(c.Expect.Result, json.RawMessage(ph(string(got)))); !ok {
			return fmt.Errorf("result %s: %s", ph(string(got)), why)
		}
	}
	for k, want := range c.Expect.Store {
		v, err := st.Get(context.Background(), app, k)
		if errors.Is(err, engine.ErrNotFound) {
			if string(want) == "null" {
				continue
			}
			return fmt.Errorf("store %s: absent, want %s", k, want)
		}
		if err != nil {
			return err
		}
		if ok, why := subset(want, json.RawMessage(ph(string(v)))); !ok {
			return fmt.Errorf("store %s = %s: %s", k, ph(string(v)), why)
		}
	}
	return nil
}

// subset reports whether got has want: objects by each of want's fields,
// the rest exactly.
func subset(want, got json.RawMessage) (bool, string) {
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		return false, "the expectation is not JSON"
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return false, "not JSON"
	}
	return has(w, g, "")
}

func has(w, g any, at string) (bool, string) {
	wm, ok := w.(map[string]any)
	if !ok {
		if !reflect.DeepEqual(w, g) {
			wj, _ := json.Marshal(w)
			return false, fmt.Sprintf("%swant %s", where(at), wj)
		}
		return true, ""
	}
	gm, ok := g.(map[string]any)
	if !ok {
		return false, fmt.Sprintf("%swant an object", where(at))
	}
	for k, wv := range wm {
		gv, ok := gm[k]
		if !ok {
			return false, fmt.Sprintf("%sno field %s", where(at), k)
		}
		if ok, why := has(wv, gv, at+"."+k); !ok {
			return false, why
		}
	}
	return true, ""
}

func where(at string) string {
	if at == "" {
		return ""
	}
	return "at " + strings.TrimPrefix(at, ".") + ": "
}
