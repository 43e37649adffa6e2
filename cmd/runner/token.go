package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/server"
)

// onStore runs fn on the store --store names, closing it after.
func (c *cli) onStore(sf *storeFlags, fn func(db engine.Store) error) error {
	db, err := sf.open(c)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// tokenCmd is runner token create|list|revoke: scoped API tokens of
// runner serve (DESIGN §17), kept (as hashes) in the store.
func (c *cli) tokenCmd() *cobra.Command {
	var (
		sf  storeFlags
		srv serverFlags
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Scoped API tokens of runner serve: create, list, revoke",
		Long: `Scoped API tokens for runner serve, kept in the store as hashes (the token is
printed once, when made). Scopes:

  run:PACKAGE  run PACKAGE's targets and read its runs
  read         packages, run history, credentials' health, metrics, the store redacted
  admin        everything: store writes, --reveal, rekey, tokens

The server's own token ($MODRUN_TOKEN or --token-file) is admin. With --server
the commands go through a running server (they need an admin token); without,
they open the store (--store; a bbolt file must not be held by a server).`,
		Example: `  runner token create ci-deploy --scope run:refresh-token --expires 30d --server http://127.0.0.1:8787
  runner token list --server http://127.0.0.1:8787
  runner token revoke ci-deploy --server http://127.0.0.1:8787`,
	}
	sf.add(cmd.PersistentFlags(), "unused by token")
	cmd.PersistentFlags().Lookup("app").Hidden = true
	cmd.PersistentFlags().StringVar(&srv.url, "server", "", "the runner serve at this URL (default $MODRUN_SERVER; an admin token in $MODRUN_TOKEN)")

	var scopes []string
	var expires string
	create := &cobra.Command{
		Use:   "create NAME --scope SCOPE...",
		Short: "Make a token and print it (once)",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ttl, err := server.ParseExpiry(expires)
			if err != nil {
				return usageError{err}
			}
			if err := server.CheckTokenSpec(args[0], scopes, ttl); err != nil {
				return usageError{err}
			}
			cl, err := srv.client()
			if err != nil {
				return err
			}
			var token string
			var info server.TokenInfo
			if cl != nil {
				token, info, err = cl.CreateToken(cmd.Context(), args[0], scopes, expires)
				err = remoteError(err)
			} else {
				err = c.onStore(&sf, func(db engine.Store) (err error) {
					token, info, err = server.CreateToken(cmd.Context(), db, args[0], scopes, ttl)
					return err
				})
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, token)
			until := "until revoked"
			if !info.Expires.IsZero() {
				until = "until " + info.Expires.Format(time.RFC3339)
			}
			fmt.Fprintf(c.stderr, "token %s (%s), valid %s; it is shown only now\n", info.Name, strings.Join(info.Scopes, " "), until)
			return nil
		},
	}
	create.Flags().StringArrayVar(&scopes, "scope", nil, "admin, read or run:PACKAGE (repeatable)")
	create.Flags().StringVar(&expires, "expires", "", "lifetime: a duration such as 12h, or days such as 30d (default: until revoked)")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens: name, scopes, created, expires (never the token)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := srv.client()
			if err != nil {
				return err
			}
			var all []server.TokenInfo
			if cl != nil {
				all, err = cl.ListTokens(cmd.Context())
				err = remoteError(err)
			} else {
				err = c.onStore(&sf, func(db engine.Store) (err error) {
					all, err = server.ListTokens(cmd.Context(), db)
					return err
				})
			}
			if err != nil {
				return err
			}
			if asJSON {
				out, _ := json.MarshalIndent(all, "", "  ")
				fmt.Fprintln(c.stdout, string(out))
				return nil
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPES\tCREATED\tEXPIRES")
			for _, t := range all {
				exp := "never"
				if !t.Expires.IsZero() {
					exp = t.Expires.Format(time.RFC3339)
					if time.Now().After(t.Expires) {
						exp += " (expired)"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, strings.Join(t.Scopes, " "), t.Created.Format(time.RFC3339), exp)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")

	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token (other servers on the store stop accepting it within 2 s)",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := srv.client()
			if err != nil {
				return err
			}
			if cl != nil {
				err = remoteError(cl.RevokeToken(cmd.Context(), args[0]))
			} else {
				err = c.onStore(&sf, func(db engine.Store) error {
					return server.RevokeToken(cmd.Context(), db, args[0])
				})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
