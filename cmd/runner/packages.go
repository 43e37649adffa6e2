package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/packages"
)

func (c *cli) validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate DIR",
		Short: "Run every load check on a package; print each problem as file:line",
		Long: `Run every check a load makes — package.yaml, module names, every query file and
binding, every JS module (syntax, undeclared globals, the default export), onLoad
targets — and print each problem as file:line:col: message. Exit 1 if any.`,
		Example: `  runner validate ./my-package
  runner validate . && runner publish .`,
		Args:              exactArgs(1, "DIR"),
		ValidArgsFunction: completeDirs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, err := packages.LoadDir(args[0], modrun.New(modrun.Options{}).Kinds()...)
			if err != nil {
				n := c.printProblems(args[0], err)
				return fmt.Errorf("%s: %d problem(s)", args[0], n)
			}
			fmt.Fprintf(c.stdout, "%s: ok: %s, %d module(s)\n", args[0], pkg.Ref(), len(pkg.Modules))
			return nil
		},
	}
}

func (c *cli) publishCmd() *cobra.Command {
	var rf registry
	cmd := &cobra.Command{
		Use:   "publish DIR",
		Short: "Validate a package and publish it to the registry as NAME/VERSION.tgz",
		Long: `Validate DIR with every load check, then write its bundle (a deterministic .tgz)
and sha256 digest to the registry. A published version is immutable: publishing it
again with the same content is a no-op; with different content it is refused.`,
		Args: exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, err := packages.LoadDir(args[0], modrun.New(modrun.Options{}).Kinds()...)
			if err != nil {
				c.printProblems(args[0], err)
				return fmt.Errorf("%s: not published: fix the problems above", args[0])
			}
			reg := &packages.Registry{Dir: rf.registryDir()}
			p, err := reg.Publish(pkg.Manifest.Name, pkg.Manifest.Version, pkg.Files)
			if err != nil {
				return err
			}
			c.log.Info("published", "package", pkg.Ref(), "registry", reg.Dir)
			fmt.Fprintf(c.stdout, "%s@%s %s\n", p.Name, p.Version, p.Digest)
			return nil
		},
	}
	rf.add(cmd)
	return cmd
}

func (c *cli) listCmd() *cobra.Command {
	var rf registry
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List published packages: NAME@VERSION and digest, one per line",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := rf.registryDir()
			all, err := (&packages.Registry{Dir: dir}).List()
			if err != nil {
				return err
			}
			if len(all) == 0 {
				fmt.Fprintf(c.stderr, "no packages published in %s\n", dir)
			}
			for _, p := range all {
				fmt.Fprintf(c.stdout, "%s@%s %s\n", p.Name, p.Version, p.Digest)
			}
			return nil
		},
	}
	rf.add(cmd)
	return cmd
}

// printProblems prints each load problem on its own line, with file paths
// relative to the current directory (dir/file:line:col), as editors and
// terminals expect.
func (c *cli) printProblems(dir string, err error) int {
	problems := packages.Problems(err)
	for _, p := range problems {
		var se *engine.SourceError
		if errors.As(p, &se) {
			cp := *se
			cp.File = filepath.Join(dir, se.File)
			p = &cp
		}
		fmt.Fprintln(c.stderr, p)
	}
	return len(problems)
}
