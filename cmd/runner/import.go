package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/appsmith"
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
checked as runner validate does.`,
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
			res, err := appsmith.Import(data, appsmith.Options{Name: name, Page: page})
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
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
			for _, n := range res.Notes {
				// Notes quote the export's names: never let them drive the
				// terminal.
				fmt.Fprintln(c.stderr, termsafe.String(n))
			}
			problems := 0
			if _, err := packages.LoadDir(dir, modrun.New(modrun.Options{}).Kinds()...); err != nil {
				problems = c.printProblems(dir, err)
			}
			fmt.Fprintf(c.stdout, "imported %d queries, %d JS modules; %d need attention\n", res.Queries, res.JSModules, len(res.Notes))
			if problems > 0 {
				// DESIGN §19: exit 1 unless every package written validates.
				return fmt.Errorf("%s does not validate yet: %d problem(s) above; fix them, then runner validate %s", dir, problems, dir)
			} else {
				fmt.Fprintf(c.stdout, "%s: ok: %s validates\n", dir, res.Name)
			}
			return nil
		},
	}
	app.Flags().StringVar(&name, "name", "", "the package's name (default: the application's)")
	app.Flags().StringVar(&page, "page", "", "import only this page's actions and JS objects")
	cmd.AddCommand(app)
	return cmd
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
