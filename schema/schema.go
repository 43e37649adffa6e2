// Package schema holds JSON Schemas of modrun's source files, for editors
// (the YAML language server reads them) and for checks: package.yaml and
// NAME.query.yaml. runner schema writes them; runner new wires them in.
//
// The loader (packages, modules/query) stays the authority: a schema
// describes the shape, the loader also checks bindings, names and
// cross-file references, with file:line errors.
//
// # Place
//
// schema owns the JSON Schemas of package.yaml and query modules.
// It may import engine, binding and internal/..., none of the other parts
// (module kinds, stores, packages, worker, server, appsmith, seal,
// modtest): TestLayering in package engine fails if it does.
package schema

import "embed"

//go:embed package.schema.json query.schema.json
var files embed.FS

// Names of the schema files.
const (
	Package = "package.schema.json"
	Query   = "query.schema.json"
)

// File returns the schema file name.
func File(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("schema: no file " + name)
	}
	return b
}
