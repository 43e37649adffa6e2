package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/store"
)

// storeFlags are --store and --app, shared by run and store.
type storeFlags struct {
	path string
	app  string
}

func (f *storeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.path, "store", "", "store file (default $MODRUN_STORE, else $XDG_DATA_HOME/modrun/store.db)")
	cmd.Flags().StringVar(&f.app, "app", "", "store namespace (default: the package's name; for runner store, $MODRUN_APP)")
}

func (f *storeFlags) open() (*store.DB, error) {
	p := f.path
	if p == "" {
		p = defaultStore()
	}
	return store.Open(p, nil)
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s: want %s, got %d argument(s); see runner %s --help", cmd.Name(), what, len(args), cmd.Name())
		}
		return nil
	}
}

func (c *cli) runCmd() *cobra.Command {
	var (
		sf       storeFlags
		inputs   []string
		params   string
		argsJSON string
		registry string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run PACKAGE TARGET",
		Short: "Run a query module or a JS function and print its result as JSON",
		Long: `Run TARGET of PACKAGE and print the result as JSON on stdout.

PACKAGE is a directory, or a published package: NAME, NAME@1.2.0, NAME@^1, NAME@~1.2.
TARGET is a query module's name (its response data is printed) or MODULE.FUNCTION
(its resolved return value is printed; undefined prints null).`,
		Example: `  runner run ./my-package profile --input baseUrl=http://127.0.0.1:8080
  runner run refresh-token@^1 auth.refreshAccessToken --store ./tokens.db
  runner run ./my-package main.greet --args '["world"]'`,
		Args: exactArgs(2, "PACKAGE TARGET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, target := args[0], args[1]
			in, err := parseInputs(inputs)
			if err != nil {
				return err
			}
			var callArgs []json.RawMessage
			isQuery := !strings.Contains(target, ".")
			switch {
			case isQuery && argsJSON != "":
				return usagef("--args is for MODULE.FUNCTION targets; a query target takes --params")
			case !isQuery && params != "":
				return usagef("--params is for query targets; a function takes --args '[...]'")
			case isQuery && params != "":
				if !json.Valid([]byte(params)) {
					return usagef("--params: not valid JSON; want an object such as '{\"id\": 1}'")
				}
				callArgs = []json.RawMessage{json.RawMessage(params)}
			case argsJSON != "":
				if err := json.Unmarshal([]byte(argsJSON), &callArgs); err != nil {
					return usagef("--args: want a JSON array of arguments such as '[\"x\", 2]': %v", err)
				}
			}
			if registry == "" {
				registry = defaultRegistry()
			}
			db, err := sf.open()
			if err != nil {
				return err
			}
			defer db.Close()
			eng := modrun.New(modrun.Options{Store: db, Registry: registry, Logger: c.log, Timeout: timeout})
			pkg, err := eng.Load(ref)
			if err != nil {
				return err
			}
			inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{App: sf.app, Inputs: in})
			if err != nil {
				return err
			}
			defer inst.Close()
			c.log.Debug("run", "package", pkg.Ref(), "target", target)
			out, err := inst.Call(cmd.Context(), target, callArgs...)
			if err != nil {
				return fmt.Errorf("%s", inst.Redact(err.Error()))
			}
			fmt.Fprintln(c.stdout, inst.Redact(string(out)))
			return nil
		},
	}
	sf.add(cmd)
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "package input as name=value (repeatable)")
	cmd.Flags().StringVar(&params, "params", "", "this.params for a query target, as JSON")
	cmd.Flags().StringVar(&argsJSON, "args", "", "arguments of a function target, as a JSON array")
	cmd.Flags().StringVar(&registry, "registry", "", "registry directory (default $MODRUN_REGISTRY, else $XDG_DATA_HOME/modrun/registry)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "deadline of the run (default 60s)")
	return cmd
}

func parseInputs(kvs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--input %q: want name=value", kv)
		}
		out[k] = v
	}
	return out, nil
}
