package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/dts"
	"github.com/modrun/modrun/schema"
)

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// scaffold is the package runner new writes: a query module and a JS
// module that run against a URL given as an input.
var scaffold = map[string]string{
	"package.yaml": `# yaml-language-server: $schema=.modrun/package.schema.json
name: {{NAME}}
version: 0.1.0
description: A new modrun package
inputs:
  baseUrl: {required: true, description: "the API this package talks to, such as http://127.0.0.1:8080"}
`,
	"getJSON.query.yaml": `# yaml-language-server: $schema=.modrun/query.schema.json
# A query module: one HTTP request template. Bindings: <<expr>> (or "{{expr}}").
method: GET
url: <<inputs.baseUrl>>/<<this.params.path>>
headers: {Accept: application/json}
timeout: 10s
`,
	"main.js": `export default {
  calls: 0, // a module variable: lives as long as the instance

  // runner run DIR main.fetchAndRemember --input baseUrl=URL --args '["health"]'
  // (a "/" in path stays a separator; "." and ".." segments are escaped)
  async fetchAndRemember(path) {
    const data = await getJSON.run({ path: path ?? "" });
    this.calls++;
    await storeValue("lastFetch", { path, at: new Date().toISOString() });
    return { calls: this.calls, data };
  },
};
`,
	"README.md": `# {{NAME}}

A modrun package. Try it:

    runner validate .
    runner test .          # tests/*.test.yaml, offline from tests/cassettes
    runner run . main.fetchAndRemember --input baseUrl=http://127.0.0.1:8080 --args '["health"]'
    runner publish .

Editors: package.yaml and the query modules name their JSON Schemas
(.modrun/); modrun.d.ts and jsconfig.json describe the JS globals and the
modules (runner types . rewrites them after changes).
`,
	"tests/main.test.yaml": `# runner test . replays these from tests/cassettes; runner test . --record
# --input baseUrl=URL records them against a real API.
cases:
  - name: fetch remembers the call
    run: main.fetchAndRemember
    args: [health]
    inputs: {baseUrl: "http://127.0.0.1:8080"}
    expect:
      result: {calls: 1, data: {status: ok}}
`,
	"tests/cassettes/fetch-remembers-the-call.yaml": `# Recorded by runner test --record; secrets and tokens are placeholders.
interactions:
  - request:
      method: GET
      url: __input_baseUrl__/health
    response:
      status: 200
      contentType: application/json
      body: |
        {"status":"ok"}
`,
}

// writeSchemas writes the JSON Schemas of package.yaml and query modules
// into dir.
func writeSchemas(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{schema.Package, schema.Query} {
		if err := os.WriteFile(filepath.Join(dir, f), schema.File(f), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeTypes writes dir's modrun.d.ts, and a jsconfig.json that checks
// its JS modules against it unless there is one.
func writeTypes(dir string) error {
	pkg, err := modrun.New(modrun.Options{}).Load(dir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, dts.File), dts.Write(pkg), 0o644); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "jsconfig.json")
	if _, err := os.Stat(cfg); errors.Is(err, fs.ErrNotExist) {
		return os.WriteFile(cfg, []byte(dts.JSConfig), 0o644)
	}
	return nil
}

// typesCmd is runner types: a package's modrun.d.ts.
func (c *cli) typesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "types PACKAGE",
		Short: "Write PACKAGE/modrun.d.ts: TypeScript declarations for editors",
		Long: `Write PACKAGE/modrun.d.ts — modrun's JS globals, the package's inputs (typed by
their declared types), its oauth2: credentials and each module (query modules'
run, request, data, responseMeta; JS modules' functions) — and, if there is none,
a jsconfig.json that has an editor (or tsc -p PACKAGE/jsconfig.json) check the
package's JS modules against it. Run it again after adding a module or an input.`,
		Args: exactArgs(1, "PACKAGE (a directory)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := writeTypes(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "wrote %s\n", filepath.Join(args[0], dts.File))
			return nil
		},
	}
}

// schemaCmd is runner schema: the JSON Schemas, for editors and checks.
func (c *cli) schemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema [DIR]",
		Short: "Write the JSON Schemas of package.yaml and NAME.query.yaml",
		Long: `Write package.schema.json and query.schema.json into DIR (default: the current
directory; the same files are kept in the repository's schema/). Point an editor at
them — with the YAML language server, a first line such as
  # yaml-language-server: $schema=.modrun/package.schema.json
— and it completes fields and flags mistakes as you type. runner new does this
for the package it writes. runner validate stays the authority: it also checks
bindings, names and references between files.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if err := writeSchemas(dir); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "wrote %s and %s in %s\n", schema.Package, schema.Query, dir)
			return nil
		},
	}
}

func (c *cli) newCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "new DIR",
		Short: "Scaffold a package that validates and runs",
		Long: `Write a new package into DIR (new or empty): package.yaml with a baseUrl input,
a query module (getJSON.query.yaml), a JS module (main.js), a README, the JSON
Schemas of package.yaml and query modules in DIR/.modrun/ (the YAML files name
them for editors: the YAML language server completes and checks them), and
modrun.d.ts with a jsconfig.json, so that an editor completes and checks main.js
(runner types DIR rewrites modrun.d.ts after changes).`,
		Example: `  runner new ./hello
  runner validate ./hello
  runner run ./hello main.fetchAndRemember --input baseUrl=http://127.0.0.1:8080 --args '["health"]'`,
		Args:              exactArgs(1, "DIR"),
		ValidArgsFunction: completeDirs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				return fmt.Errorf("%s exists and is not empty; runner new writes only into a new or empty directory", dir)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(filepath.Base(abs)), "-"), "-")
			if name == "" {
				name = "my-package"
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for file, text := range scaffold {
				text = strings.ReplaceAll(text, "{{NAME}}", name)
				p := filepath.Join(dir, filepath.FromSlash(file))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					return err
				}
			}
			if err := writeSchemas(filepath.Join(dir, ".modrun")); err != nil {
				return err
			}
			// Declarations for editors: the package as written.
			if err := writeTypes(dir); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "created package %s in %s\nnext: runner validate %s\n", name, dir, dir)
			return nil
		},
	}
}
