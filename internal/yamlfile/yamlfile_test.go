package yamlfile

import (
	"strings"
	"testing"
)

func TestSyntaxErrorsHaveAColumn(t *testing.T) {
	var v struct {
		A string `yaml:"a"`
		B string `yaml:"b"`
	}
	for src, want := range map[string]string{
		"a: x\nb: c: d\n":  "f.yaml:2:5: mapping values are not allowed in this context",
		"a: x\n\tb: y\n":   "f.yaml:2:1: found a tab character",
		"a: `x`\n":         "f.yaml:1:4: found character that cannot start any token",
		"a: [1, 2\nb: 1\n": "f.yaml:",
	} {
		err := Decode("f.yaml", []byte(src), &v)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v; want %q", src, err, want)
		}
	}
}

type inner struct {
	X int `yaml:"x"`
}

type outer struct {
	Name  string           `yaml:"name"`
	Inner map[string]inner `yaml:"inner"`
}

func TestUnknownFieldListsValidOnes(t *testing.T) {
	var v outer
	err := Decode("f.yaml", []byte("name: a\ninner: {k: {y: 1}}\n"), &v)
	if err == nil || !strings.Contains(err.Error(), `unknown field "y" (valid fields: x)`) {
		t.Fatalf("err = %v", err)
	}
}
