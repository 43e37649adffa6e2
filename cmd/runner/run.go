package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/memlimit"
	"github.com/modrun/modrun/seal"
	_ "github.com/modrun/modrun/store" // file stores (bbolt)
)

// storeFlags are --store, --keys and --app, shared by every command that
// opens a store.
type storeFlags struct {
	path string
	keys string
	app  string

	ring *seal.Keyring // the keyring open used
}

// add defines --store and --app in flags (a command's own, or persistent
// ones shared with its subcommands).
//
// appHelp says what --app defaults to for the command.
func (f *storeFlags) add(flags *pflag.FlagSet, appHelp string) {
	flags.StringVar(&f.path, "store", "", "store file, or etcd://HOST:PORT[,…]/PREFIX (default $MODRUN_STORE, else $XDG_DATA_HOME/modrun/store.db)")
	flags.StringVar(&f.keys, "keys", "", "keyring sealing the store's values, ID:BASE64 per line, the first seals (default $MODRUN_KEYS_FILE, else $XDG_STATE_HOME/modrun/keys, made if missing)")
	flags.StringVar(&f.app, "app", "", appHelp)
}

// keysPath is --keys, else $MODRUN_KEYS_FILE (given), else the default
// keyring's path.
func (f *storeFlags) keysPath() (path string, given bool) {
	if f.keys != "" {
		return f.keys, true
	}
	if p := os.Getenv("MODRUN_KEYS_FILE"); p != "" {
		return p, true
	}
	return filepath.Join(stateHome(), "modrun", "keys"), false
}

// keyring loads --keys (else $MODRUN_KEYS_FILE); without either, the
// default keyring, which is made (and its path told on stderr) the first
// time.
func (f *storeFlags) keyring(c *cli) (*seal.Keyring, error) {
	path, given := f.keysPath()
	if given {
		return seal.LoadKeyring(path)
	}
	ring, created, err := seal.LoadOrCreate(path)
	if created {
		fmt.Fprintf(c.stderr, "keys: written to %s (it seals the store: keep it, without it the values cannot be read)\n", path)
	}
	return ring, err
}

// Help texts of --app.
const (
	appOfRun   = "store namespace of the run (default: the package's name)"
	appOfStore = "store namespace (default $MODRUN_APP, else the store's only app)"
)

// appStore is a store that lists its apps: bbolt's or etcd's.
type appStore interface {
	engine.Store
	Apps() ([]string, error)
}

// open opens the store --store names, by its scheme (engine.OpenStore):
// an etcd:// or etcds:// URL, else a bbolt file.
//
// Every value is sealed at rest with the keyring (see keyring).
func (f *storeFlags) open(c *cli) (appStore, error) {
	p := f.path
	if p == "" {
		p = defaultStore()
	}
	ring, err := f.keyring(c)
	if err != nil {
		return nil, err
	}
	f.ring = ring
	inner, err := engine.OpenStore(context.Background(), p)
	if err != nil {
		return nil, err
	}
	st := seal.Wrap(inner, ring)
	as, ok := st.(appStore)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("store %s cannot list its apps", p)
	}
	return as, nil
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
		sf        storeFlags
		cf        callFlags
		srv       serverFlags
		timeout   time.Duration
		maxMemory string
		isolate   bool
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
		Args:              exactArgs(2, "PACKAGE TARGET"),
		ValidArgsFunction: cf.complete,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNumbers(cmd, atLeast{"timeout", 0}); err != nil {
				return err
			}
			ref, target := args[0], args[1]
			in, callArgs, err := cf.parse(target)
			if err != nil {
				return err
			}
			cl, err := srv.client()
			if err != nil {
				return err
			}
			if cl != nil {
				if len(cf.inputs) > 0 {
					return usagef("--input with --server: inputs are the server's (runner serve --input)")
				}
				out, err := cl.Run(cmd.Context(), ref, target, sf.app, callArgs, timeout)
				if err != nil {
					return remoteError(err)
				}
				fmt.Fprintln(c.stdout, string(out))
				return nil
			}
			limit, err := memlimit.Parse(maxMemory)
			if err != nil {
				return usagef("--max-memory: %v", err)
			}
			// The package first: a mistaken PACKAGE must not make a store
			// and a keyring on its way to the error.
			pkg, err := modrun.New(modrun.Options{Registry: cf.registryDir(), Logger: c.log}).Load(ref)
			if err != nil {
				return err
			}
			db, err := sf.open(c)
			if err != nil {
				return err
			}
			defer db.Close()
			eng := modrun.New(modrun.Options{Store: db, Registry: cf.registryDir(), Logger: c.log, Timeout: timeout,
				Isolate: isolate, Workers: 1, MaxMemory: limit})
			defer eng.Close()
			inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{App: sf.app, Inputs: envInputs(pkg, in)})
			if err != nil {
				return err
			}
			defer inst.Close()
			c.log.Debug("run", "package", pkg.Ref(), "target", target)
			// This process hosts one run: past the limit, the run fails
			// and the process exits instead of dying of a Go fatal error.
			// (An isolated run's worker watches its own heap.)
			if isolate {
				limit = 0
			}
			ctx, stop := memlimit.Watch(cmd.Context(), limit)
			defer stop()
			out, err := inst.Call(ctx, target, callArgs...)
			if err != nil {
				return fmt.Errorf("%s", inst.Redact(err.Error()))
			}
			fmt.Fprintln(c.stdout, inst.Redact(string(out)))
			return nil
		},
	}
	sf.add(cmd.Flags(), appOfRun)
	cf.add(cmd)
	srv.add(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "deadline of the run (default 60s)")
	cmd.Flags().StringVar(&maxMemory, "max-memory", "256MiB", "memory limit of the run (KiB, MiB, GiB; 0: none): past it the run fails")
	cmd.Flags().BoolVar(&isolate, "isolate", false, "run the call in a worker process, as runner serve does")
	return cmd
}

// callFlags are the flags that say what to call and with what: --input,
// --params, --args and --registry (run and bench).
type callFlags struct {
	inputs []string
	params string
	args   string
	registry
}

// registry is the --registry flag, with the §8 default.
type registry struct{ dir string }

func (r *registry) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.dir, "registry", "", "registry directory (default $MODRUN_REGISTRY, else $XDG_DATA_HOME/modrun/registry)")
}

func (r *registry) registryDir() string {
	if r.dir != "" {
		return r.dir
	}
	return defaultRegistry()
}

func (f *callFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.inputs, "input", nil, "package input as name=value (repeatable)")
	cmd.Flags().StringVar(&f.params, "params", "", "this.params for a query target, as JSON")
	cmd.Flags().StringVar(&f.args, "args", "", "arguments of a function target, as a JSON array")
	f.registry.add(cmd)
}

// parse returns the inputs and the call's arguments for target: a query
// target takes --params (one object), a MODULE.FUNCTION target --args.
func (f *callFlags) parse(target string) (map[string]any, []json.RawMessage, error) {
	in, err := parseInputs(f.inputs)
	if err != nil {
		return nil, nil, err
	}
	isQuery := !strings.Contains(target, ".")
	switch {
	case isQuery && f.args != "":
		return nil, nil, usagef("--args is for MODULE.FUNCTION targets; a query target takes --params")
	case !isQuery && f.params != "":
		return nil, nil, usagef("--params is for query targets; a function takes --args '[...]'")
	case f.params != "":
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(f.params), &obj); err != nil || obj == nil {
			return nil, nil, usagef("--params: want a JSON object such as '{\"id\": 1}' (this.params is an object)")
		}
		return in, []json.RawMessage{json.RawMessage(f.params)}, nil
	case f.args != "":
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(f.args), &args); err != nil {
			return nil, nil, usagef("--args: want a JSON array of arguments such as '[\"x\", 2]': %v", err)
		}
		return in, args, nil
	}
	return in, nil, nil
}

// parseInputs reads --input flags: name=value, or name=@FILE for the
// contents of a file (one trailing newline dropped: secrets stay off the
// command line, out of ps and shell history). @@ starts a value with a
// literal @.
func parseInputs(kvs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--input %q: want name=value or name=@FILE", truncate(kv))
		}
		switch {
		case strings.HasPrefix(v, "@@"):
			v = v[1:]
		case strings.HasPrefix(v, "@"):
			data, err := os.ReadFile(v[1:])
			if err != nil {
				return nil, usagef("--input %s=@FILE: %v", k, err)
			}
			v = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		}
		out[k] = v
	}
	return out, nil
}

// envInputs adds to given, for each input of pkg it lacks, the value of
// $MODRUN_INPUT_<NAME> if set. --input wins over the environment, which
// wins over the default.
func envInputs(pkg *engine.Package, given map[string]any) map[string]any {
	for _, name := range pkg.InputNames() {
		if _, ok := given[name]; ok {
			continue
		}
		if v, ok := os.LookupEnv(engine.InputEnv(name)); ok {
			given[name] = v
		}
	}
	return given
}

// truncate shortens what a usage error quotes: it may be long, or a
// secret typed in the wrong place.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
