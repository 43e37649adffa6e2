package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/appsmith"
	"github.com/modrun/modrun/internal/progress"
	"github.com/modrun/modrun/internal/termsafe"
	"github.com/modrun/modrun/packages"
)

func (c *cli) importCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Turn another tool's export into a modrun package",
	}
	var name, page string
	app := &cobra.Command{
		Use:   "appsmith EXPORT.json DIR",
		Short: "Import an Appsmith application export: REST APIs and JS objects",
		Long: `Turn an Appsmith application export into a package in DIR (new or empty): each
REST API action becomes NAME.query.yaml, each JS object NAME.js, each datasource
URL an input with that default, JS functions run on page load go to onLoad, and
{{ }} bindings carry over; widget references become inputs. What a headless
package cannot honour is listed, each as ACTION.FIELD: reason, and in the
package's README.md. Nothing from the export is executed. The package is then
checked as runner validate does. An app with actions on several pages becomes
one package per page, in DIR/PAGE (pages are namespaces); actions deleted in the
editor are skipped and listed.`,
		Example: `  runner import appsmith ./crm.json ./crm
  runner import appsmith ./crm.json ./crm-users --page Users --name crm-users
  runner validate ./crm && runner run ./crm Users.refresh --input usersApiUrl=http://127.0.0.1:8080`,
		Args: exactArgs(2, "EXPORT.json DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dir := args[0], args[1]
			data, err := readExport(src)
			if err != nil {
				return err
			}
			if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				return fmt.Errorf("%s exists and is not empty; runner import writes only into a new or empty directory", dir)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			var phase atomic.Pointer[string]
			phase.Store(new(fmt.Sprintf("import: converting %s (%.1f MB)", src, float64(len(data))/1e6)))
			line := progress.Start(c.stderr, func() string { return *phase.Load() })
			defer line.Stop()
			stdout, stderr := line.Wrap(c.stdout), line.Wrap(c.stderr)
			results, err := appsmith.ImportPages(data, appsmith.Options{Name: name, Page: page})
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			failed := 0
			for i, res := range results {
				pdir := filepath.Join(dir, res.Dir)
				phase.Store(new(fmt.Sprintf("import: package %d of %d: writing and validating %s", i+1, len(results), pdir)))
				if err := writeImport(pdir, res); err != nil {
					return err
				}
				for _, n := range res.Notes {
					// Notes quote the export's names: never let them drive
					// the terminal.
					if res.Page != "" {
						n = "page " + res.Page + ": " + n
					}
					fmt.Fprintln(stderr, termsafe.String(n))
				}
				problems := 0
				if _, err := packages.LoadDir(pdir, modrun.New(modrun.Options{}).Kinds()...); err != nil {
					problems = printProblems(stderr, pdir, err)
				}
				fmt.Fprintf(stdout, "%s: imported %d queries, %d JS modules; %d need attention\n", pdir, res.Queries, res.JSModules, len(res.Notes))
				if problems > 0 {
					failed++
					fmt.Fprintf(stdout, "%s: %d problem(s): fix them, then runner validate %s\n", pdir, problems, pdir)
				} else {
					fmt.Fprintf(stdout, "%s: ok: %s validates\n", pdir, res.Name)
				}
			}
			line.Stop()
			if len(results) > 1 {
				fmt.Fprintf(c.stdout, "%d pages, one package each (pages are namespaces: the same name on two pages never collides)\n", len(results))
			}
			if failed > 0 {
				// DESIGN §19: exit 1 unless every package written validates.
				return fmt.Errorf("%d of %d package(s) in %s do not validate yet (problems above)", failed, len(results), dir)
			}
			return nil
		},
	}
	app.Flags().StringVar(&name, "name", "", "the package's name (default: the application's)")
	app.Flags().StringVar(&page, "page", "", "import only this page's actions and JS objects")
	cmd.AddCommand(app)
	return cmd
}

// writeImport writes res's files into dir, made if missing.
func writeImport(dir string, res *appsmith.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := make([]string, 0, len(res.Files))
	for f := range res.Files {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		// Import names files itself (module names are identifiers);
		// never outside dir all the same.
		if filepath.Base(f) != f {
			return fmt.Errorf("refusing to write %q outside %s", f, dir)
		}
		if err := os.WriteFile(filepath.Join(dir, f), res.Files[f], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// readExport reads an export file, at most appsmith.MaxExport bytes.
func readExport(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > appsmith.MaxExport {
		return nil, fmt.Errorf("%s: %d bytes; an export is at most %d", p, fi.Size(), appsmith.MaxExport)
	}
	// Read at most the limit whatever the file is: a FIFO or a device
	// (/dev/zero) has no size to check first.
	data, err := io.ReadAll(io.LimitReader(f, appsmith.MaxExport+1))
	if err != nil {
		return nil, err
	}
	if len(data) > appsmith.MaxExport {
		return nil, fmt.Errorf("%s: more than %d bytes; an export is at most that", p, appsmith.MaxExport)
	}
	return data, nil
}
