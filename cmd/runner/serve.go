package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/memlimit"
	"github.com/modrun/modrun/internal/tracing"
	"github.com/modrun/modrun/server"
)

func (c *cli) serveCmd() *cobra.Command {
	var (
		sf              storeFlags
		reg             registry
		inputs          []string
		listen          string
		tokenFile       string
		maxConcurrent   int
		queue           int
		history         int
		instances       int
		shutdownTimeout time.Duration
		timeout         time.Duration
		isolate         bool
		workers         int
		maxMemory       string
		cpuProf         string
		idleInstance    time.Duration
		name            string
		tlsCert, tlsKey string
		notify          string
		watchEvery      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve [PACKAGE ...]",
		Short: "Serve packages over HTTP: runs, schedules, history, metrics and an inspector",
		Long: `Serve the packages named (directories or registry references) over HTTP until
SIGTERM or SIGINT; with --registry, also every published package by NAME@RANGE.
SIGHUP reloads: the keyring (--keys), directories are read again and registry ranges re-resolved; runs in
flight finish on the version they started on.

Every endpoint but /healthz, /readyz and the inspector's page needs
Authorization: Bearer TOKEN. The token is $MODRUN_TOKEN, else the contents of
--token-file; with neither, one is generated and written to
$XDG_STATE_HOME/modrun/serve.token (mode 0600), whose path is logged.

Endpoints: POST /v1/run/{package}/{target}, POST /v1/runs, GET /v1/runs[/{id}],
GET /v1/packages, GET|PUT|DELETE /v1/store/{app}[/{key}], /healthz, /readyz,
/metrics, and the inspector at /.`,
		Example: `  runner serve ./examples/refresh-token/package --input baseUrl=http://127.0.0.1:8080
  runner serve refresh-token@^1 --registry ./registry --listen 127.0.0.1:9000
  curl -H "Authorization: Bearer $MODRUN_TOKEN" -d '{"args": []}' http://127.0.0.1:8787/v1/run/refresh-token/auth.keepFresh`,
		ValidArgsFunction: completeDirs,
		RunE: func(cmd *cobra.Command, args []string) error {
			limit, err := memlimit.Parse(maxMemory)
			if err != nil {
				return usagef("--max-memory: %v", err)
			}
			if err := checkNumbers(cmd, atLeast{"history", 1}, atLeast{"max-concurrent", 1}, atLeast{"instances", 1},
				atLeast{"queue", 0}, atLeast{"workers", 0}, atLeast{"timeout", 0}, atLeast{"shutdown-timeout", 0},
				atLeast{"idle-instance", 1}, atLeast{"watch-credentials", 1}); err != nil {
				return err
			}
			if queue == 0 {
				queue = -1 // server.Options: zero is the default, negative none
			}
			useRegistry := cmd.Flags().Changed("registry")
			if len(args) == 0 && !useRegistry {
				return usagef("serve: name at least one PACKAGE, or give --registry to serve every published one")
			}
			global, perPkg, err := serveInputs(inputs)
			if err != nil {
				return err
			}
			token, err := serveToken(tokenFile, c)
			if err != nil {
				return err
			}
			db, err := sf.open(c)
			if err != nil {
				return err
			}
			defer db.Close()
			// inputsFor is what serve gives pkg: --input of every package
			// that declares it, then PACKAGE:NAME=VALUE, then the
			// environment.
			inputsFor := func(pkg *engine.Package) map[string]any {
				in := map[string]any{}
				for k, v := range global {
					if _, ok := pkg.Manifest.Inputs[k]; ok {
						in[k] = v
					}
				}
				for k, v := range perPkg[pkg.Manifest.Name] {
					in[k] = v
				}
				return envInputs(pkg, in)
			}
			// OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on (DESIGN §20);
			// spans still buffered go out as serve stops.
			stopTracing, err := tracing.Setup(cmd.Context(), "modrun")
			if err != nil {
				return fmt.Errorf("tracing: %w", err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := stopTracing(ctx); err != nil {
					c.log.Warn("tracing: spans not exported at shutdown", "error", err)
				}
			}()
			if tracing.Enabled() {
				fmt.Fprintln(c.stderr, "tracing: OTLP/HTTP export on")
			}
			var srv *server.Server
			// Each run's own log lines go to its history entry too.
			runLogs := server.NewRunLogs()
			eng := modrun.New(modrun.Options{Store: db, Registry: reg.registryDir(), Logger: slog.New(runLogs.Handler(c.log.Handler())), Timeout: timeout,
				Isolate: isolate, Workers: workers, MaxMemory: limit,
				OnWorkerRestart: func(reason string) { srv.WorkerRestarted(reason) }})
			defer eng.Close()
			srv = server.New(server.Options{
				Loader:   eng,
				Packages: args,
				Registry: useRegistry,
				NewInstance: func(pkg *engine.Package, app string, obs engine.Observer) (engine.Instance, error) {
					return eng.NewInstance(pkg, modrun.InstanceOptions{App: app, Inputs: inputsFor(pkg), Observer: obs})
				},
				Secrets: func(pkg *engine.Package) []string {
					in, err := pkg.ResolveInputs(inputsFor(pkg))
					if err != nil {
						return nil
					}
					return pkg.Secrets(in)
				},
				Store:           db,
				Token:           token,
				Logger:          c.log,
				RunLogs:         runLogs,
				MaxConcurrent:   maxConcurrent,
				Queue:           queue,
				History:         history,
				Instances:       instances,
				ShutdownTimeout: shutdownTimeout,
				IdleInstance:    idleInstance,
				Notify:          notify,
				WatchEvery:      watchEvery,
				Name:            serverName(name, listen),
			})
			if err := srv.Load(cmd.Context()); err != nil {
				return err
			}
			stopProfile, err := cpuProfile(cpuProf)
			if err != nil {
				return err
			}
			defer stopProfile()
			if (tlsCert == "") != (tlsKey == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen %s: %w", listen, err)
			}
			scheme := "http"
			if tlsCert != "" {
				cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
				if err != nil {
					l.Close()
					return fmt.Errorf("--tls-cert/--tls-key: %w", err)
				}
				l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
				scheme = "https"
			} else if !loopbackAddr(l.Addr()) {
				c.log.Warn("serving plain HTTP on a non-loopback address: the API token and results cross the network in clear; give --tls-cert and --tls-key, or put a TLS proxy in front", "listen", l.Addr().String())
			}
			// What it serves, then the address, on stderr whatever the log
			// level: scripts and people need them (port 0 picks a free
			// port). The address comes last: it says the server is up.
			for _, p := range srv.Packages() {
				fmt.Fprintf(c.stderr, "package %s: %d module(s), %d schedule(s)\n", p.Ref(), len(p.Modules), len(p.Manifest.Schedules))
			}
			fmt.Fprintf(c.stderr, "serving on %s://%s\n", scheme, l.Addr())
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					// The keyring first: a key added to its file seals
					// from now on (then runner store rekey).
					if err := sf.ring.Reload(); err != nil {
						c.log.Error("reload the keyring", "error", err)
					}
					if err := srv.Reload(); err != nil {
						c.log.Error("reload", "error", err)
					} else {
						c.log.Info("reloaded")
					}
				}
			}()
			err = srv.Serve(cmd.Context(), l)
			c.log.Info("stopped")
			return err
		},
	}
	sf.add(cmd.Flags(), "unused by serve: a request's \"app\" chooses")
	cmd.Flags().Lookup("app").Hidden = true
	reg.add(cmd)
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "an input of every package that declares it, NAME=VALUE, or of one package, PACKAGE:NAME=VALUE (repeatable; VALUE may be @FILE)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8787", "address to listen on (port 0: any free port)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the bearer token (when $MODRUN_TOKEN is not set)")
	cmd.Flags().IntVar(&maxConcurrent, "max-concurrent", server.DefaultMaxConcurrent, "runs executing at once")
	cmd.Flags().IntVar(&queue, "queue", server.DefaultQueue, "runs waiting for a slot before requests get 429 (0: none wait)")
	cmd.Flags().IntVar(&history, "history", server.DefaultHistory, "runs kept in the history")
	cmd.Flags().IntVar(&instances, "instances", 0, "instances per package version and app: more let CPU-bound JS use more cores (default 1)")
	cmd.Flags().DurationVar(&shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "time runs in flight get to finish on SIGTERM")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "a run's deadline (default 60s; a request's \"timeout\" may shorten it)")
	cmd.Flags().BoolVar(&isolate, "isolate", true, "run JS in worker processes, so that a run exhausting memory or a core takes down only its worker (false: in-process)")
	cmd.Flags().IntVar(&workers, "workers", 0, "worker processes with --isolate (default: one per CPU)")
	cmd.Flags().StringVar(&maxMemory, "max-memory", "256MiB", "memory limit of each worker (KiB, MiB, GiB): past it its runs fail and it is replaced")
	cmd.Flags().DurationVar(&idleInstance, "idle-instance", server.DefaultIdleInstance, "release an instance (a package version bound to an app) unused this long, here and in every worker")
	cmd.Flags().StringVar(&notify, "notify", "", "POST a JSON event to this URL when a credential enters refresh_failing or needs_login, or its refresh token nears expiry")
	cmd.Flags().DurationVar(&watchEvery, "watch-credentials", server.DefaultWatchEvery, "how often the credentials' health is read for --notify and its log lines")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	cmd.Flags().StringVar(&name, "name", "", "this server's name in a run history shared on one store (default: HOST/LISTEN-ADDRESS)")
	cmd.Flags().StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the server, until it stops, to this file (go tool pprof)")
	return cmd
}

// loopbackAddr reports whether a listener's address is a loopback one.
func loopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// serverName is --name, else the host and listen address: unique among
// servers sharing a store, and the same when a server starts again.
func serverName(name, listen string) string {
	if name != "" {
		return name
	}
	host, _ := os.Hostname()
	return host + "/" + listen
}

// serveInputs splits --input values into those of every package and
// those of one (PACKAGE:NAME=VALUE).
func serveInputs(kvs []string) (map[string]any, map[string]map[string]any, error) {
	all, err := parseInputs(kvs)
	if err != nil {
		return nil, nil, err
	}
	global := map[string]any{}
	per := map[string]map[string]any{}
	for k, v := range all {
		pkg, name, ok := strings.Cut(k, ":")
		if !ok {
			global[k] = v
			continue
		}
		if per[pkg] == nil {
			per[pkg] = map[string]any{}
		}
		per[pkg][name] = v
	}
	return global, per, nil
}

// MinTokenLen is the shortest API token serve accepts.
const MinTokenLen = 16

// serveToken is $MODRUN_TOKEN, else --token-file's contents, else a new
// token written to $XDG_STATE_HOME/modrun/serve.token (0600). Its path is
// logged; the token never is.
func serveToken(file string, c *cli) (string, error) {
	if t := os.Getenv("MODRUN_TOKEN"); t != "" {
		if len(t) < MinTokenLen {
			return "", usagef("$MODRUN_TOKEN is %d bytes; a token needs at least %d (head -c 32 /dev/urandom | base64)", len(t), MinTokenLen)
		}
		fmt.Fprintln(c.stderr, "token: from $MODRUN_TOKEN")
		return t, nil
	}
	if file != "" {
		fi, err := os.Stat(file)
		if err != nil {
			return "", usagef("--token-file: %v", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", usagef("--token-file %s can be read by others (mode %04o): chmod 600 %s", file, fi.Mode().Perm(), file)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return "", usagef("--token-file: %v", err)
		}
		t := strings.TrimSpace(string(data))
		if t == "" {
			return "", usagef("--token-file %s is empty", file)
		}
		if len(t) < MinTokenLen {
			return "", usagef("--token-file %s holds %d bytes; a token needs at least %d", file, len(t), MinTokenLen)
		}
		fmt.Fprintf(c.stderr, "token: from %s\n", file)
		return t, nil
	}
	var b [32]byte
	rand.Read(b[:])
	t := hex.EncodeToString(b[:])
	p := filepath.Join(stateHome(), "modrun", "serve.token")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, []byte(t+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.Chmod(p, 0o600); err != nil {
		return "", err
	}
	c.log.Warn("generated a bearer token", "file", p)
	fmt.Fprintf(c.stderr, "token: written to %s\n", p)
	return t, nil
}

// stateHome is $XDG_STATE_HOME, else ~/.local/state.
func stateHome() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".local/state"
	}
	return filepath.Join(home, ".local", "state")
}

// serverFlags are --server and the token of a client command.
type serverFlags struct{ url string }

func (f *serverFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "server", "", "run on a runner serve at this URL (default $MODRUN_SERVER; token from $MODRUN_TOKEN)")
}

// client returns the client of --server or $MODRUN_SERVER, or nil for a
// local run.
func (f *serverFlags) client() (*server.Client, error) {
	u := f.url
	if u == "" {
		u = os.Getenv("MODRUN_SERVER")
	}
	if u == "" {
		return nil, nil
	}
	tok := os.Getenv("MODRUN_TOKEN")
	if tok == "" {
		if data, err := os.ReadFile(filepath.Join(stateHome(), "modrun", "serve.token")); err == nil {
			tok = strings.TrimSpace(string(data))
		}
	}
	if tok == "" {
		return nil, usagef("--server: set $MODRUN_TOKEN to the server's token")
	}
	cl, err := server.NewClient(u, tok)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return cl, nil
}

// remoteError is an error of a server answer, as a local run would print it.
func remoteError(err error) error {
	var re *server.RemoteError
	if errors.As(err, &re) {
		return errors.New(re.Info.Message)
	}
	return err
}
