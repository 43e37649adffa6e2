package engine

import (
	"fmt"
	"sort"
)

// Input is a package-level setting the host supplies.
type Input struct {
	Default     any    // the value when the host gives none; nil means none
	HasDefault  bool   // whether Default was set (a default may be null)
	Required    bool   // the host must give a value when there is no default
	Secret      bool   // never logged; redacted in output
	Description string // shown by validate and in docs
}

// Manifest is a package's package.yaml.
type Manifest struct {
	Name        string
	Version     string
	Description string
	Inputs      map[string]Input
	OnLoad      []string // "module.function", run in order when an instance starts
}

// Package is a loaded package: its manifest and compiled modules. It is
// immutable and may be shared by any number of instances.
type Package struct {
	Manifest Manifest
	Modules  []Module // sorted by name
	Digest   string   // sha256 of the bundle ("sha256:…"), empty for a source directory
	Files    map[string][]byte
}

// Module returns the module called name, or nil.
func (p *Package) Module(name string) Module {
	i := sort.Search(len(p.Modules), func(i int) bool { return p.Modules[i].Name() >= name })
	if i < len(p.Modules) && p.Modules[i].Name() == name {
		return p.Modules[i]
	}
	return nil
}

// Ref returns NAME@VERSION.
func (p *Package) Ref() string { return p.Manifest.Name + "@" + p.Manifest.Version }

// ResolveInputs merges the host's values over the manifest's defaults. A
// required input without a value is an error naming it and the flag that
// sets it. Unknown names are an error too: a typo should not pass silently.
func (p *Package) ResolveInputs(given map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(p.Manifest.Inputs))
	for name := range given {
		if _, ok := p.Manifest.Inputs[name]; !ok {
			return nil, fmt.Errorf("package %s has no input %q (inputs: %v)", p.Manifest.Name, name, p.InputNames())
		}
	}
	for _, name := range p.InputNames() {
		in := p.Manifest.Inputs[name]
		if v, ok := given[name]; ok {
			out[name] = v
			continue
		}
		if in.HasDefault {
			out[name] = in.Default
			continue
		}
		if in.Required {
			return nil, fmt.Errorf("package %s: input %q is required: set it with --input %s=VALUE", p.Manifest.Name, name, name)
		}
		out[name] = nil
	}
	return out, nil
}

// InputNames returns the names of the package's inputs, sorted.
func (p *Package) InputNames() []string {
	names := make([]string, 0, len(p.Manifest.Inputs))
	for n := range p.Manifest.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Secrets returns the values of the inputs marked secret, for redaction.
func (p *Package) Secrets(inputs map[string]any) []string {
	var out []string
	for name, in := range p.Manifest.Inputs {
		if !in.Secret {
			continue
		}
		if s, ok := inputs[name].(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}
