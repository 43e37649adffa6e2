package schema_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/modrun/modrun/schema"
)

func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.File(name)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(name)
	if err != nil {
		t.Fatalf("%s does not compile: %v", name, err)
	}
	return s
}

// instance reads a YAML file as the JSON value a schema validates.
func instance(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRepositoryFilesValidate: every package.yaml and *.query.yaml in the
// repository (but the deliberately broken test packages) fits its schema.
func TestRepositoryFilesValidate(t *testing.T) {
	pkg, query := compile(t, schema.Package), compile(t, schema.Query)
	n := 0
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != ".." || d.Name() == "broken" || d.Name() == "build") {
			return fs.SkipDir
		}
		var s *jsonschema.Schema
		switch {
		case d.Name() == "package.yaml":
			s = pkg
		case strings.HasSuffix(d.Name(), ".query.yaml"):
			s = query
		default:
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		if err := s.Validate(instance(t, data)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d files checked", n)
	}
	t.Logf("%d files fit their schemas", n)
}

// TestSchemasRefuse: the mistakes the loader refuses, the schemas flag
// too (an editor shows them as you type).
func TestSchemasRefuse(t *testing.T) {
	pkg, query := compile(t, schema.Package), compile(t, schema.Query)
	for _, c := range []struct {
		s   *jsonschema.Schema
		src string
	}{
		{pkg, "name: Bad_Name\nversion: 1.0.0\n"},
		{pkg, "name: a\nversion: 1.0\n"},
		{pkg, "name: a\nversion: 1.0.0\nbogus: 1\n"},
		{pkg, "name: a\nversion: 1.0.0\ninputs: {k: {secret: true, default: x}}\n"},
		{pkg, "name: a\nversion: 1.0.0\ninputs: {k: {type: text}}\n"},
		{pkg, "name: a\nversion: 1.0.0\noauth2: {api: {grant: implicit, tokenUrl: t}}\n"},
		{pkg, "name: a\nversion: 1.0.0\noauth2: {api: {grant: password}}\n"},
		{pkg, "name: a\nversion: 1.0.0\nschedules: [{every: 1m, cron: '@daily', run: m.f}]\n"},
		{pkg, "name: a\nversion: 1.0.0\nonLoad: [justafunction]\n"},
		{query, "method: GET\n"},
		{query, "url: x\nmethod: FETCH\n"},
		{query, "url: x\nbody: {json: {}, raw: x}\n"},
		{query, "url: x\nauth: {bearer: t, oauth2: api}\n"},
		{query, "url: x\nretry: {attempts: 0}\n"},
		{query, "url: x\nheaders: {A: {nested: 1}}\n"},
	} {
		if err := c.s.Validate(instance(t, []byte(c.src))); err == nil {
			t.Errorf("%q fits its schema", c.src)
		}
	}
}
