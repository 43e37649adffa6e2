package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modrun/modrun/internal/redact"
	"github.com/modrun/modrun/internal/tracing"
)

// Exit codes (DESIGN §8).
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks errors that exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// cli is one invocation's state: streams, flags shared by every command,
// and the logger built from them.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
	redact         *redact.Redactor
	log            *slog.Logger
}

// run is the whole CLI; main only adds the process around it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, redact: redact.New()}
	root := c.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "runner: "+c.redact.String(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitUsage
	}
	return exitFail
}

// isCobraUsage recognises cobra's own usage errors, which are plain: an
// unknown command or a wrong argument count. (Flag errors come through
// SetFlagErrorFunc as usageError.) Only messages that start so count: an
// OS error inside a run ("open /dev/null/x: invalid argument") is not a
// usage error.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument \"", "flag needs an argument", "required flag"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "runner",
		Short: "Run Appsmith-style packages of query and JS modules headless",
		Long: `runner runs modrun packages: query modules (HTTP request templates with
<<bindings>>) and JS modules (export default { ... }), with a durable store,
and publishes them as versioned, digest-checked bundles.

Environment:
  MODRUN_STORE         the store: a file (default $XDG_DATA_HOME/modrun/store.db), or
                       etcd://[USER@]HOST:PORT[,HOST:PORT…]/PREFIX (etcds:// for TLS)
  MODRUN_ETCD_PASSWORD the etcd user's password, if not in the URL (never printed)
  MODRUN_ETCD_CA, MODRUN_ETCD_CERT, MODRUN_ETCD_KEY
                       PEM files of etcds://: the CA, and a client certificate and key
  MODRUN_REGISTRY      the registry directory (default $XDG_DATA_HOME/modrun/registry)
  MODRUN_APP           the store app of runner store commands, when --app is not given
  MODRUN_INPUT_<NAME>  a package input, NAME upper-cased (apiKey: MODRUN_INPUT_APIKEY);
                       --input wins over it, it wins over the default
  MODRUN_SERVER        the runner serve that run and store commands use (as --server)
  MODRUN_TOKEN         the bearer token of runner serve, and of --server clients
  MODRUN_<FLAG>        every runner serve flag (--max-concurrent: MODRUN_MAX_CONCURRENT);
                       the flag wins (docs/reference.md lists them); runner healthcheck
                       reads MODRUN_LISTEN as serve does
  OTEL_EXPORTER_OTLP_ENDPOINT
                       turns on OpenTelemetry tracing of serve, over OTLP/HTTP (the other
                       OTEL_* variables configure it; docs/reference.md "Tracing")
  MODRUN_KEYS_FILE     the keyring sealing the store's values, as --keys: ID:BASE64 per
                       line, the first seals, all open (default $XDG_STATE_HOME/modrun/keys,
                       made on first use)
  XDG_STATE_HOME       where serve writes a generated token and the default keyring
                       lives (default ~/.local/state)
  MODRUN_HEAP_FLOOR    MB the heap may grow to before the garbage collector runs
                       (default 32; 0: Go's default). GOGC or GOMEMLIMIT, if set, win.
  XDG_DATA_HOME        where the defaults above live (default ~/.local/share)
  MODRUN_WORKER, MODRUN_WORKER_MAX_MEMORY, MODRUN_WORKER_LOG_LEVEL,
  MODRUN_WORKER_HEAP_FLOOR, MODRUN_WORKER_BOARD
                       set by the runner for its own worker processes (--isolate)`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() == "serve" {
				if err := applyEnv(cmd); err != nil {
					return err
				}
			}
			return c.setupLog()
		},
	}
	root.PersistentFlags().StringVar(&c.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{suggestFlag(cmd, err)} })
	root.Version = version()
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(c.runCmd(), c.storeCmd(), c.publishCmd(), c.listCmd(), c.validateCmd(), c.newCmd(), c.benchCmd(), c.versionCmd(), c.serveCmd(), c.importCmd(), c.loginCmd(), c.healthcheckCmd(), c.credentialsCmd(), c.tokenCmd(), c.testCmd(), c.schemaCmd(), c.typesCmd())
	return root
}

func (c *cli) setupLog() error {
	var level slog.Level
	switch c.logLevel {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return usagef("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch c.logFormat {
	case "text":
		h = slog.NewTextHandler(c.stderr, opts)
	case "json":
		h = slog.NewJSONHandler(c.stderr, opts)
	default:
		return usagef("--log-format %q: want text or json", c.logFormat)
	}
	c.log = slog.New(tracing.LogHandler(redact.Handler(h, c.redact)))
	return nil
}

// dataHome is $XDG_DATA_HOME, else ~/.local/share.
func dataHome() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".local/share"
	}
	return filepath.Join(home, ".local", "share")
}

// defaultStore is $MODRUN_STORE, else $XDG_DATA_HOME/modrun/store.db.
func defaultStore() string {
	if s := os.Getenv("MODRUN_STORE"); s != "" {
		return s
	}
	return filepath.Join(dataHome(), "modrun", "store.db")
}

// defaultRegistry is $MODRUN_REGISTRY, else $XDG_DATA_HOME/modrun/registry.
func defaultRegistry() string {
	if s := os.Getenv("MODRUN_REGISTRY"); s != "" {
		return s
	}
	return filepath.Join(dataHome(), "modrun", "registry")
}

// suggestFlag adds the nearest flag's name to an unknown-flag error:
// "unknown flag: --inputs (did you mean --input?)".
func suggestFlag(cmd *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return err
	}
	best, bestD := "", 3 // at most two edits away
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if d := editDistance(name, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return fmt.Errorf("%w; see runner %s --help", err, cmd.Name())
	}
	return fmt.Errorf("%w (did you mean --%s?)", err, best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// version is the module version, commit and Go version of the binary.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "runner (no build information)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	out := "runner " + v
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		out += " commit " + rev[:min(12, len(rev))] + modified
	}
	return out + " " + info.GoVersion
}

func (c *cli) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the runner's version, commit and Go version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return writeJSONLine(c.stdout, versionInfo())
			}
			fmt.Fprintln(c.stdout, version())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"version", "commit", "modified", "go"} as JSON`)
	return cmd
}

// buildInfo is runner version --json.
type buildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
}

func versionInfo() buildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return buildInfo{Version: "unknown"}
	}
	out := buildInfo{Version: info.Main.Version, Go: info.GoVersion}
	if out.Version == "" {
		out.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Commit = s.Value
		case "vcs.modified":
			out.Modified = s.Value == "true"
		}
	}
	return out
}

// atLeast is the least value of a numeric flag that means something: 0 for
// a count or duration where zero is the default, 1 where there must be
// some.
type atLeast struct {
	name string
	min  int64
}

// checkNumbers refuses a numeric flag given (or set by its variable) below
// its least value, naming it: the options it feeds read zero and below as
// their defaults, which would hide the mistake.
func checkNumbers(cmd *cobra.Command, flags ...atLeast) error {
	for _, f := range flags {
		fl := cmd.Flags().Lookup(f.name)
		switch {
		case fl == nil:
			return fmt.Errorf("internal error: %s has no flag --%s to check", cmd.CommandPath(), f.name)
		case !fl.Changed:
			continue // a default means what its help says
		}
		var v int64
		switch fl.Value.Type() {
		case "int":
			n, _ := cmd.Flags().GetInt(f.name)
			v = int64(n)
		case "duration":
			d, _ := cmd.Flags().GetDuration(f.name)
			v = int64(d)
		}
		if v >= f.min {
			continue
		}
		want := "a positive number"
		switch {
		case fl.Value.Type() == "duration" && f.min == 0:
			want = "a duration of zero or more (0: the default)"
		case fl.Value.Type() == "duration":
			want = "a positive duration such as 30s"
		case f.min == 0:
			want = "zero or more"
		}
		name := "--" + f.name
		if fl.Shorthand != "" {
			name = "-" + fl.Shorthand + "/" + name // bench -n, -c
		}
		return usagef("%s %s: want %s", name, fl.Value.String(), want)
	}
	return nil
}
