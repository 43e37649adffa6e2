package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/progress"
	"github.com/modrun/modrun/packages"
)

func (c *cli) validateCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate DIR",
		Short: "Run every load check on a package; print each problem as file:line",
		Long: `Run every check a load makes — package.yaml, module names, every query file and
binding, every JS module (syntax, undeclared globals, the default export), onLoad
targets — and print each problem as file:line:col: message. Exit 1 if any.
With --json, print one JSON object on stdout instead:
{"dir", "ok", "package", "version", "modules", "problems": [{"file", "line", "col", "message"}]}.`,
		Example: `  runner validate ./my-package
  runner validate . && runner publish .
  runner validate . --json | jq .problems`,
		Args:              exactArgs(1, "DIR"),
		ValidArgsFunction: completeDirs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, err := packages.LoadDir(args[0], modrun.New(modrun.Options{}).Kinds()...)
			if asJSON {
				return c.validateJSON(args[0], pkg, err)
			}
			if err != nil {
				n := c.printProblems(args[0], err)
				return fmt.Errorf("%s: %d problem(s)", args[0], n)
			}
			fmt.Fprintf(c.stdout, "%s: ok: %s, %d module(s)\n", args[0], pkg.Ref(), len(pkg.Modules))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the outcome as one JSON object")
	return cmd
}

// problemJSON is one load problem of validate --json.
type problemJSON struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

// validateJSON prints validate's outcome as JSON; problems exit 1.
func (c *cli) validateJSON(dir string, pkg *engine.Package, loadErr error) error {
	out := struct {
		Dir      string        `json:"dir"`
		OK       bool          `json:"ok"`
		Package  string        `json:"package,omitempty"`
		Version  string        `json:"version,omitempty"`
		Modules  int           `json:"modules,omitempty"`
		Problems []problemJSON `json:"problems"`
	}{Dir: dir, OK: loadErr == nil, Problems: []problemJSON{}}
	if pkg != nil {
		out.Package, out.Version, out.Modules = pkg.Manifest.Name, pkg.Manifest.Version, len(pkg.Modules)
	}
	for _, p := range packages.Problems(loadErr) {
		var se *engine.SourceError
		if errors.As(p, &se) {
			out.Problems = append(out.Problems, problemJSON{File: filepath.Join(dir, se.File), Line: se.Line, Col: se.Col, Message: se.Msg})
			continue
		}
		out.Problems = append(out.Problems, problemJSON{Message: p.Error()})
	}
	if err := writeJSONLine(c.stdout, out); err != nil {
		return err
	}
	if loadErr != nil {
		return fmt.Errorf("%s: %d problem(s)", dir, len(out.Problems))
	}
	return nil
}

// writeJSONLine writes v as one line of JSON, HTML characters as they are.
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
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
			var phase atomic.Pointer[string]
			phase.Store(new("publish: validating " + args[0]))
			line := progress.Start(c.stderr, func() string { return *phase.Load() })
			defer line.Stop()
			pkg, err := packages.LoadDir(args[0], modrun.New(modrun.Options{}).Kinds()...)
			if err != nil {
				line.Stop()
				c.printProblems(args[0], err)
				return fmt.Errorf("%s: not published: fix the problems above", args[0])
			}
			size := 0
			for _, f := range pkg.Files {
				size += len(f)
			}
			phase.Store(new(fmt.Sprintf("publish: packing %s (%d files, %.1f MB) and writing its digest", pkg.Ref(), len(pkg.Files), float64(size)/1e6)))
			reg := &packages.Registry{Dir: rf.registryDir()}
			p, err := reg.Publish(pkg.Manifest.Name, pkg.Manifest.Version, pkg.Files)
			line.Stop()
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
	var asJSON bool
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
			if asJSON {
				type entry struct {
					Name    string `json:"name"`
					Version string `json:"version"`
					Digest  string `json:"digest"`
				}
				out := []entry{}
				for _, p := range all {
					out = append(out, entry{p.Name, p.Version, p.Digest})
				}
				return writeJSONLine(c.stdout, out)
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
	cmd.Flags().BoolVar(&asJSON, "json", false, `print a JSON array of {"name", "version", "digest"}`)
	return cmd
}

// printProblems prints each load problem on its own line to stderr, with
// file paths relative to the current directory (dir/file:line:col), as
// editors and terminals expect.
func (c *cli) printProblems(dir string, err error) int { return printProblems(c.stderr, dir, err) }

func printProblems(w io.Writer, dir string, err error) int {
	problems := packages.Problems(err)
	for _, p := range problems {
		var se *engine.SourceError
		if errors.As(p, &se) {
			cp := *se
			cp.File = filepath.Join(dir, se.File)
			p = &cp
		}
		fmt.Fprintln(w, p)
	}
	return len(problems)
}
