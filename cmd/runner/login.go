package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
)

// loginer is the instance ability runner login needs (an in-process
// instance has it).
type loginer interface {
	Login(ctx context.Context, credential string, open func(url string)) error
}

func (c *cli) loginCmd() *cobra.Command {
	var (
		sf      storeFlags
		cf      callFlags
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login PACKAGE CREDENTIAL",
		Short: "Log in with an OAuth2 credential's authorization code grant and store its tokens",
		Long: `Run the authorization code grant of CREDENTIAL (an oauth2: entry of package.yaml
with grant: authorization_code), with PKCE (S256) and state: runner listens on the
credential's loopback redirectUrl, prints "open: URL" on stderr, waits for the
callback, checks its state, exchanges the code and stores the token set under
oauth2.CREDENTIAL in the app. Queries with auth: {oauth2: CREDENTIAL} then refresh
it as needed.`,
		Example: `  runner login ./my-package api --input clientId=… --input clientSecret=@secret.txt
  runner login my-package@^1 api --app tenant-a --timeout 2m`,
		Args: exactArgs(2, "PACKAGE CREDENTIAL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNumbers(cmd, atLeast{"timeout", 1}); err != nil {
				return err
			}
			in, _, err := cf.parse("login.credential")
			if err != nil {
				return err
			}
			db, err := sf.open(c)
			if err != nil {
				return err
			}
			defer db.Close()
			eng := modrun.New(modrun.Options{Store: db, Registry: cf.registryDir(), Logger: c.log})
			pkg, err := eng.Load(args[0])
			if err != nil {
				return err
			}
			inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{App: sf.app, Inputs: envInputs(pkg, in)})
			if err != nil {
				return err
			}
			defer inst.Close()
			l, ok := inst.(loginer)
			if !ok {
				return fmt.Errorf("this instance cannot log in")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			// The URL is printed redacted: an authorizeUrl may have a
			// secret input bound into it.
			err = l.Login(ctx, args[1], func(url string) { fmt.Fprintln(c.stderr, "open: "+inst.Redact(url)) })
			if err != nil {
				return fmt.Errorf("%s", inst.Redact(err.Error()))
			}
			fmt.Fprintln(c.stdout, "logged in: "+args[1])
			return nil
		},
	}
	sf.add(cmd.Flags(), appOfRun)
	cmd.Flags().StringArrayVar(&cf.inputs, "input", nil, "package input as name=value or name=@FILE (repeatable)")
	cf.registry.add(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the callback")
	return cmd
}
