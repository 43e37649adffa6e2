package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/oauth2"
)

// credentialsCmd shows the health of the OAuth2 token sets a store holds
// (DESIGN §18), locally or through a server.
func (c *cli) credentialsCmd() *cobra.Command {
	var (
		sf     storeFlags
		srv    serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "credentials [PACKAGE]",
		Short: "Show the state of the OAuth2 logins a store holds: fresh, expiring, refresh_failing, needs_login",
		Long: `Show each OAuth2 credential's token set in each app of the store (or of one app with
--app, one package with PACKAGE): its state, when its access and refresh tokens
expire, when it was last refreshed, failures in a row and the last error. Never a
token. With --server (or $MODRUN_SERVER), the served store's (GET /v1/credentials).

States: none, fresh, expiring (within the refresh margin: the next call refreshes
it), refresh_failing (the last refresh failed; calls retry), needs_login (the
refresh token was rejected: run runner login PACKAGE CREDENTIAL).`,
		Example: `  runner credentials
  runner credentials my-api --app tenant-a --json
  runner credentials --server http://127.0.0.1:8787`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("credentials takes at most one argument, a package name")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg := ""
			if len(args) == 1 {
				pkg = args[0]
			}
			all, err := c.credentials(cmd.Context(), &sf, &srv, pkg)
			if err != nil {
				return err
			}
			if sf.app != "" {
				kept := all[:0]
				for _, h := range all {
					if h.App == sf.app {
						kept = append(kept, h)
					}
				}
				all = kept
			}
			if asJSON {
				return writeJSONLine(c.stdout, all)
			}
			if len(all) == 0 {
				fmt.Fprintln(c.stderr, "no OAuth2 token sets in the store")
				return nil
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PACKAGE\tCREDENTIAL\tAPP\tSTATE\tEXPIRES\tREFRESHED\tFAILURES\tLAST ERROR")
			for _, h := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", orDash(h.Package), h.Credential, h.App, h.State,
					when(h.ExpiresAt), when(h.RefreshedAt), h.Failures, orDash(strings.ReplaceAll(h.LastError, "\n", " ")))
			}
			return tw.Flush()
		},
	}
	sf.add(cmd.Flags(), "only this app (default: every app)")
	srv.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print a JSON array of {"package", "credential", "app", "state", "expiresAt", "refreshedAt", "refreshTokenExpiresAt", "failures", "lastError", "failedAt"}`)
	return cmd
}

// credentials reads the health from the server of --server, else the
// local store.
func (c *cli) credentials(ctx context.Context, sf *storeFlags, srv *serverFlags, pkg string) ([]oauth2.Health, error) {
	cl, err := srv.client()
	if err != nil {
		return nil, err
	}
	if cl != nil {
		all, err := cl.Credentials(ctx, pkg)
		return all, remoteError(err)
	}
	db, err := sf.open(c)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var apps []string
	if sf.app != "" {
		apps = []string{sf.app}
	} else if _, ok := db.(engine.AppLister); !ok {
		return nil, usagef("this store cannot list its apps: give --app")
	}
	all, err := oauth2.Credentials(ctx, db, apps)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, h := range all {
		if pkg == "" || h.Package == pkg {
			out = append(out, h)
		}
	}
	return out, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// when writes a time in ms since the epoch as RFC 3339, relative to now.
func when(ms *int64) string {
	if ms == nil {
		return "-"
	}
	t := time.UnixMilli(*ms)
	d := time.Until(t).Round(time.Second)
	if d >= 0 {
		return fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), d)
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), -d)
}
