package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envName is the variable a serve flag also reads: MODRUN_ and the
// flag's name upper-cased, dashes as underscores (--max-concurrent:
// MODRUN_MAX_CONCURRENT).
func envName(flag string) string {
	return "MODRUN_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envlessFlags have no variable of their own: --input has
// MODRUN_INPUT_<NAME>; --registry, which also turns on serving every
// published package, keeps MODRUN_REGISTRY's meaning for every command
// (the registry's directory); --app is unused by serve; --keys reads
// MODRUN_KEYS_FILE in every command that opens a store (DESIGN §17).
var envlessFlags = map[string]bool{"input": true, "registry": true, "app": true, "help": true, "keys": true}

// serveEnvFlags lists serve's flags that read a variable, in order.
func serveEnvFlags(cmd *cobra.Command) []*pflag.Flag {
	var out []*pflag.Flag
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !envlessFlags[f.Name] && !f.Hidden {
			out = append(out, f)
		}
	})
	return out
}

// applyEnv sets each of cmd's flags that the command line did not give
// from its variable, if set (DESIGN §20): flags win.
func applyEnv(cmd *cobra.Command) error {
	for _, f := range serveEnvFlags(cmd) {
		if f.Changed {
			continue
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			continue
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			return usagef("$%s=%q: %v", envName(f.Name), truncate(v), err)
		}
	}
	return nil
}
