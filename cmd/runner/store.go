package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/redact"
	"github.com/modrun/modrun/seal"
)

func (c *cli) storeCmd() *cobra.Command {
	var sf storeFlags
	var srv serverFlags
	var reveal bool
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Read and change the durable store: list, get, set, rm, clear",
		Long: `Read and change the store of one app (a namespace: --app, else $MODRUN_APP,
else the only app in the store).

Values are JSON. Values of keys that look like secrets (token, secret, password…)
are shown as "[REDACTED]" unless --reveal is given.`,
		Example: `  runner store list --app refresh-token
  runner store set --app refresh-token refreshtoken '"abc"'
  runner store get --app refresh-token expiresAt`,
	}
	sf.add(cmd.PersistentFlags(), appOfStore)
	cmd.RegisterFlagCompletionFunc("app", sf.completeApps)
	cmd.PersistentFlags().BoolVar(&reveal, "reveal", false, "show the values of secret-looking keys")
	cmd.PersistentFlags().StringVar(&srv.url, "server", "", "the store of a runner serve at this URL (default $MODRUN_SERVER; token from $MODRUN_TOKEN)")

	withStore := func(fn func(ctx context.Context, st engine.Store, app string, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			app := sf.app
			if app == "" {
				app = os.Getenv("MODRUN_APP")
			}
			if engine.ReservedApp(app) {
				return usagef("--app %s is reserved: modrun.* apps are modrun's own (run history, schedules)", app)
			}
			cl, err := srv.client()
			if err != nil {
				return err
			}
			if cl != nil {
				if app == "" {
					return usagef("--app is required with --server")
				}
				return remoteError(fn(cmd.Context(), cl.Store(reveal), app, args))
			}
			db, err := sf.open(c)
			if err != nil {
				return err
			}
			defer db.Close()
			if app == "" {
				// The store of one app needs no --app.
				all, err := db.Apps()
				if err != nil {
					return err
				}
				var apps []string
				for _, a := range all {
					if !engine.ReservedApp(a) {
						apps = append(apps, a)
					}
				}
				switch len(apps) {
				case 1:
					app = apps[0]
				case 0:
					if cmd.Name() != "list" {
						return usagef("--app is required: the store is empty, so there is no app to default to (runner run uses the package's name)")
					}
					app = "-"
				default:
					return usagef("--app is required: the store holds apps %s", strings.Join(apps, ", "))
				}
			}
			return fn(cmd.Context(), db, app, args)
		}
	}
	show := func(key string, v json.RawMessage) json.RawMessage {
		switch {
		case reveal:
			return v
		case redact.SecretKey(key):
			return json.RawMessage(`"` + redact.Mask + `"`)
		}
		return redact.JSON(v) // {"session": {"access_token": …}}
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "Print every key and value as a JSON object",
		Long: `Print every key and value of the app as one JSON object (secret-looking values
redacted unless --reveal). The output is JSON already; --json is accepted so that
every command that lists takes it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: withStore(func(ctx context.Context, st engine.Store, app string, _ []string) error {
			all, err := st.List(ctx, app)
			if err != nil {
				return err
			}
			keys := make([]string, 0, len(all))
			for k := range all {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var b bytes.Buffer
			b.WriteString("{")
			for i, k := range keys {
				if i > 0 {
					b.WriteString(",")
				}
				kb, _ := json.Marshal(k)
				fmt.Fprintf(&b, "\n  %s: %s", kb, show(k, all[k]))
			}
			if len(keys) > 0 {
				b.WriteString("\n")
			}
			b.WriteString("}")
			fmt.Fprintln(c.stdout, b.String())
			return nil
		}),
	}
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print one value",
		Args:  exactArgs(1, "KEY"),
		RunE: withStore(func(ctx context.Context, st engine.Store, app string, args []string) error {
			v, err := st.Get(ctx, app, args[0])
			if errors.Is(err, engine.ErrNotFound) {
				return fmt.Errorf("%s: no such key in app %s", args[0], app)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, string(show(args[0], v)))
			return nil
		}),
	}
	set := &cobra.Command{
		Use:   "set KEY JSON",
		Short: "Store a JSON value (a string needs JSON quotes: '\"word\"')",
		Args:  exactArgs(2, "KEY JSON"),
		RunE: withStore(func(ctx context.Context, st engine.Store, app string, args []string) error {
			if err := writableKey(args[0]); err != nil {
				return err
			}
			if !json.Valid([]byte(args[1])) {
				return usagef("set %s: the value is not JSON (it is not repeated here: it may be a secret); a string needs quotes, as in '\"text\"'; numbers, true, false, null, objects and arrays go as they are", args[0])
			}
			return st.Set(ctx, app, args[0], json.RawMessage(args[1]))
		}),
	}
	rm := &cobra.Command{
		Use:   "rm KEY",
		Short: "Remove a key",
		Args:  exactArgs(1, "KEY"),
		RunE: withStore(func(ctx context.Context, st engine.Store, app string, args []string) error {
			if err := writableKey(args[0]); err != nil {
				return err
			}
			return st.Delete(ctx, app, args[0])
		}),
	}
	clearCmd := &cobra.Command{
		Use:   "clear",
		Short: "Remove every key of the app",
		Args:  exactArgs(0, "no arguments"),
		RunE: withStore(func(ctx context.Context, st engine.Store, app string, _ []string) error {
			return st.Clear(ctx, app)
		}),
	}
	list.Flags().Bool("json", true, "print JSON (the default and only format of store list)")
	cmd.AddCommand(list, get, set, rm, clearCmd, c.rekeyCmd(&sf, &srv), c.keygenCmd(&sf))
	return cmd
}

// writableKey refuses set and rm of a reserved key (DESIGN §17): a
// credential's token set is written by runner login and its refreshes
// only, bound to its package and credential.
func writableKey(key string) error {
	if engine.ReservedKey(key) {
		return usagef("key %s holds a credential's token set, which only modrun writes: runner login replaces it, runner credentials shows its state (runner store clear removes an app's keys, token sets included)", engine.QuoteKey(key))
	}
	return nil
}

// rekeyCmd is runner store rekey: every value re-sealed under the first
// key of the keyring, in this process or (--server) in the server that
// holds the store.
func (c *cli) rekeyCmd(sf *storeFlags, srv *serverFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rekey",
		Short: "Re-seal every value of the store under the keyring's first key",
		Long: `Re-seal every value of the store (all apps, token sets and run history included)
under the first key of the keyring, and seal values stored in clear by an earlier
version. Servers may keep running: a value written meanwhile is left as they wrote
it. Rekey is idempotent and resumable: run it again after an error.

To rotate keys: runner store keygen puts a new key first in the keyring file;
reload every server using the store (SIGHUP) so that they seal with it; run
runner store rekey (with --server for a bbolt file a server holds); then remove
the old key's line.`,
		Example: `  runner store keygen --keys /etc/modrun/keys
  kill -HUP $(pidof runner)
  runner store rekey --server http://127.0.0.1:8787
  runner store rekey --store etcd://10.0.0.5:2379/modrun --keys /etc/modrun/keys`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := srv.client()
			if err != nil {
				return err
			}
			var rep engine.RekeyReport
			if cl != nil {
				rep, err = cl.Rekey(cmd.Context())
				err = remoteError(err)
			} else {
				var db appStore
				if db, err = sf.open(c); err != nil {
					return err
				}
				defer db.Close()
				rk, ok := db.(engine.Rekeyer)
				if !ok {
					return errors.New("rekey: the store does not seal its values")
				}
				rep, err = rk.Rekey(cmd.Context(), func(r engine.RekeyReport) {
					fmt.Fprintf(c.stderr, "rekey: %d app(s), %d value(s), %d resealed\n", r.Apps, r.Values, r.Resealed)
				})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "sealed by key %s: %d value(s) in %d app(s); %d resealed, %d already were\n", rep.Key, rep.Values, rep.Apps, rep.Resealed, rep.Current)
			return nil
		},
	}
}

// keygenCmd is runner store keygen: a new key first in the keyring file.
func (c *cli) keygenCmd(sf *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Add a new key, first, to the keyring file (it seals from then on)",
		Long: `Add a new random key at the top of the keyring file (--keys, else
$MODRUN_KEYS_FILE, else $XDG_STATE_HOME/modrun/keys; made, mode 0600, if missing).
The first key seals and every key opens, so values sealed before stay readable.
The key itself is never printed; its id is. Then reload servers (SIGHUP) and run
runner store rekey.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := sf.keysPath()
			id, err := seal.AddKey(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "key %s added first to %s\n", id, path)
			return nil
		},
	}
}
