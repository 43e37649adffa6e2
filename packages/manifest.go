package packages

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/yamlfile"
)

// ManifestFile is the name of a package's manifest.
const ManifestFile = "package.yaml"

var (
	nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

type manifestFile struct {
	Name        string               `yaml:"name"`
	Version     string               `yaml:"version"`
	Description string               `yaml:"description"`
	Inputs      map[string]inputFile `yaml:"inputs"`
	OnLoad      []string             `yaml:"onLoad"`
	Schedules   []scheduleFile       `yaml:"schedules"`
	OAuth2      map[string]yaml.Node `yaml:"oauth2"`
}

type inputFile struct {
	Type        string    `yaml:"type"`
	Default     yaml.Node `yaml:"default"`
	Required    bool      `yaml:"required"`
	Secret      bool      `yaml:"secret"`
	Description string    `yaml:"description"`
}

// ParseManifest decodes and checks package.yaml.
func ParseManifest(data []byte) (*engine.Manifest, error) {
	var f manifestFile
	var errs []error
	if err := yamlfile.Decode(ManifestFile, data, &f); err != nil {
		if yamlfile.Fatal(err) {
			return nil, err
		}
		errs = append(errs, err)
	}
	bad := func(format string, args ...any) {
		errs = append(errs, engine.Errorf(ManifestFile, 0, 0, format, args...))
	}
	switch {
	case f.Name == "":
		bad("name is required")
	case !nameRe.MatchString(f.Name) || len(f.Name) > 100:
		bad("name %q: use lower-case letters, digits and dashes, starting with a letter or digit", f.Name)
	}
	if f.Version == "" {
		bad("version is required (semver, such as 1.0.0)")
	} else if v, err := semver.StrictNewVersion(f.Version); err != nil {
		bad("version %q is not semver (such as 1.2.0): %v", f.Version, err)
	} else if v.Metadata() != "" {
		// Build metadata does not order versions (semver §10): 1.0.0+b1
		// beside 1.0.0 with other content would make one version two.
		bad("version %q: build metadata (+%s) does not make another version; drop it or bump the version", f.Version, v.Metadata())
	} else {
		f.Version = v.String()
	}
	m := &engine.Manifest{Name: f.Name, Version: f.Version, Description: f.Description, Inputs: map[string]engine.Input{}, OnLoad: f.OnLoad}
	names := make([]string, 0, len(f.Inputs))
	for n := range f.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		in := f.Inputs[n]
		if !engine.IsIdentifier(n) {
			bad("input %q: the name must be a JS identifier", n)
		}
		ei := engine.Input{Type: in.Type, Required: in.Required, Secret: in.Secret, Description: in.Description}
		switch in.Type {
		case "", engine.TypeString, engine.TypeNumber, engine.TypeBoolean, engine.TypeJSON:
		default:
			bad("input %s: type %q: want string, number, boolean or json", n, in.Type)
			ei.Type = ""
		}
		if in.Default.Kind != 0 {
			if err := in.Default.Decode(&ei.Default); err != nil {
				errs = append(errs, yamlfile.NodeError(ManifestFile, &in.Default, "input %s: default: %v", n, err))
			}
			ei.HasDefault = true
			var err error
			if ei.Default, ei.Type, err = typedDefault(ei); err != nil {
				errs = append(errs, yamlfile.NodeError(ManifestFile, &in.Default, "input %s: default: %v", n, err))
			}
			if in.Secret {
				errs = append(errs, yamlfile.NodeError(ManifestFile, &in.Default, "input %s is secret: a default would publish the secret in the bundle; give it at run time", n))
			}
		}
		if ei.Type == "" {
			ei.Type = engine.TypeString
		}
		m.Inputs[n] = ei
	}
	m.OnLoad = nil
	for _, t := range f.OnLoad {
		if tg, err := engine.ParseTarget(t); err != nil || tg.Function == "" {
			bad("onLoad %q: want MODULE.FUNCTION", t)
			continue
		}
		m.OnLoad = append(m.OnLoad, t)
	}
	for _, name := range sortedNames(f.OAuth2) {
		node := f.OAuth2[name]
		var cf oauth2File
		if err := decodeStrict(&node, &cf); err != nil {
			errs = append(errs, yamlfile.NodeError(ManifestFile, &node, "oauth2 %s: %v", name, err))
			continue
		}
		cred, err := parseCredential(cf)
		if !engine.IsIdentifier(name) {
			errs = append(errs, yamlfile.NodeError(ManifestFile, &node, "oauth2 %q: a credential's name is a JS identifier", name))
		}
		if err != nil {
			errs = append(errs, yamlfile.NodeError(ManifestFile, &node, "oauth2 %s: %v", name, err))
			continue
		}
		errs = append(errs, checkCredentialBindings(name, &node, m.Inputs)...)
		if m.OAuth2 == nil {
			m.OAuth2 = map[string]engine.Credential{}
		}
		m.OAuth2[name] = cred
	}
	for i, sf := range f.Schedules {
		sc, err := parseSchedule(sf)
		if err != nil {
			bad("schedules[%d]: %v", i, err)
			continue
		}
		m.Schedules = append(m.Schedules, sc)
	}
	if len(errs) > 0 {
		return m, joinErrors(errs)
	}
	return m, nil
}

// decodeStrict decodes n into v, refusing fields v does not have (a
// yaml.Node's Decode has no KnownFields).
func decodeStrict(n *yaml.Node, v any) error {
	out, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "not found in type") {
			return fmt.Errorf("unknown field (%s)", strings.TrimPrefix(msg[strings.Index(msg, "field "):], "field "))
		}
		return errors.New(strings.TrimPrefix(msg, "yaml: "))
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// typedDefault returns an input's default and its type: the declared type
// (the default must have it; a JSON input takes any value), else the
// default's own. YAML integers become float64, as JSON numbers do.
func typedDefault(in engine.Input) (any, string, error) {
	d := in.Default
	if i, ok := d.(int); ok {
		d = float64(i)
	}
	var own string
	switch d.(type) {
	case nil:
		own = in.Type
	case string:
		own = engine.TypeString
	case float64:
		own = engine.TypeNumber
	case bool:
		own = engine.TypeBoolean
	default:
		own = engine.TypeJSON
	}
	switch {
	case in.Type == "":
		if own == "" {
			own = engine.TypeString
		}
		return d, own, nil
	case in.Type == engine.TypeJSON || d == nil || own == in.Type:
		return d, in.Type, nil
	}
	return d, in.Type, fmt.Errorf("a %s default for an input of type %s", own, in.Type)
}

func joinErrors(errs []error) error {
	var flat []error
	for _, e := range errs {
		flat = append(flat, Problems(e)...)
	}
	return &ProblemList{Errs: flat}
}

// ProblemList is every problem a load check found, one per line.
type ProblemList struct{ Errs []error }

func (p *ProblemList) Error() string {
	s := make([]string, len(p.Errs))
	for i, e := range p.Errs {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems.
func (p *ProblemList) Unwrap() []error { return p.Errs }

// Problems flattens joined errors into a list of single problems.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}
