package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/modtest"
	"github.com/modrun/modrun/store"
)

// testCmd is runner test: a package's cases, replayed offline from their
// cassettes, or recorded against the real APIs (DESIGN §21).
func (c *cli) testCmd() *cobra.Command {
	var (
		record bool
		match  string
		asJSON bool
		inputs []string
	)
	cmd := &cobra.Command{
		Use:   "test PACKAGE",
		Short: "Run a package's test cases, replaying recorded HTTP (or --record it)",
		Long: `Run the cases in PACKAGE/tests/*.test.yaml, each on a fresh in-memory store and a
fresh instance, replaying HTTP from tests/cassettes/CASE.yaml: no network is used.
A request the cassette lacks fails the case, naming method and URL.

--record sends the requests to the real APIs instead and rewrites each case's
cassette, with secret inputs, URL inputs and tokens (access_token, refresh_token,
… in responses) replaced by placeholders (__input_NAME__, __token_N__).

A test file:

  cases:
    - name: login stores the tokens
      run: auth.login                 # MODULE.FUNCTION, or a query module
      args: []                        # a function's arguments (params: {} for a query)
      inputs: {username: demo, password: demo-password}
      store: {}                       # values in the store before
      before: []                      # targets called first, unchecked
      expect:
        result: {loggedIn: true}      # objects: these fields (others may be there)
        store: {refreshtoken: __token_2__}
        # or error: "a substring of the error"

Output is like go test's: ok or FAIL per case and a summary; exit 1 if any fails.`,
		Example: `  runner test examples/refresh-token/package
  runner test ./my-package --run 'login|refresh'
  runner test ./my-package --record --input baseUrl=http://127.0.0.1:8080`,
		Args: exactArgs(1, "PACKAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			var re *regexp.Regexp
			if match != "" {
				var err error
				if re, err = regexp.Compile(match); err != nil {
					return usagef("--run %q: %v", match, err)
				}
			}
			override, err := parseInputs(inputs)
			if err != nil {
				return err
			}
			cases, err := modtest.Load(dir)
			if err != nil {
				return err
			}
			pkg, err := modrun.New(modrun.Options{}).Load(dir)
			if err != nil {
				return err
			}
			results := modtest.Run(cmd.Context(), dir, pkg, cases, modtest.Options{
				Record:   record,
				Match:    re,
				Inputs:   override,
				NewStore: func() engine.Store { return store.NewMemory() },
				// Each case compiles the package anew: its query modules
				// send through the case's recorder.
				NewInstance: func(_ *engine.Package, app string, inputs map[string]any, st engine.Store, rt http.RoundTripper) (engine.Instance, error) {
					eng := modrun.New(modrun.Options{Store: st, Transport: rt, Logger: c.log})
					p, err := eng.Load(dir)
					if err != nil {
						return nil, err
					}
					return eng.NewInstance(p, modrun.InstanceOptions{App: app, Inputs: inputs})
				},
			})
			failed := 0
			type jsonResult struct {
				Name     string  `json:"name"`
				File     string  `json:"file"`
				Line     int     `json:"line"`
				OK       bool    `json:"ok"`
				Error    string  `json:"error,omitempty"`
				Seconds  float64 `json:"seconds"`
				Recorded int     `json:"recorded,omitempty"`
			}
			var out []jsonResult
			for _, r := range results {
				jr := jsonResult{Name: r.Case.Name, File: r.Case.File, Line: r.Case.Line, OK: r.Err == nil, Seconds: r.Duration.Seconds(), Recorded: r.Recorded}
				if r.Err != nil {
					failed++
					jr.Error = r.Err.Error()
				}
				out = append(out, jr)
				if asJSON {
					continue
				}
				status := "ok  "
				if r.Err != nil {
					status = "FAIL"
				}
				extra := ""
				if record {
					extra = fmt.Sprintf(" (recorded %d request(s))", r.Recorded)
				}
				fmt.Fprintf(c.stdout, "%s %s (%s:%d) %s%s\n", status, r.Case.Name, r.Case.File, r.Case.Line, r.Duration.Round(time.Millisecond), extra)
				if r.Err != nil {
					fmt.Fprintf(c.stdout, "     %s\n", r.Err)
				}
			}
			if asJSON {
				if out == nil {
					out = []jsonResult{}
				}
				b, _ := json.MarshalIndent(out, "", "  ")
				fmt.Fprintln(c.stdout, string(b))
			} else {
				fmt.Fprintf(c.stdout, "%d passed, %d failed\n", len(results)-failed, failed)
			}
			if len(results) == 0 {
				return errors.New("no case matched --run")
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d case(s) failed", failed, len(results))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&record, "record", false, "call the real APIs and rewrite the cassettes")
	cmd.Flags().StringVar(&match, "run", "", "run only the cases whose name matches this regular expression")
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "NAME=VALUE: an input of every case, over the case's own (say, the base URL of a server to record against)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of {name, file, line, ok, error, seconds}")
	return cmd
}
