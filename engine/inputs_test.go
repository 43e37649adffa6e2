package engine_test

import (
	"strings"
	"testing"

	"github.com/modrun/modrun/engine"
)

// TestBadSecretInputIsNotShown: a value given for a secret input that does
// not parse as its type is refused without quoting it; other inputs' are
// quoted, so that the mistake shows.
func TestBadSecretInputIsNotShown(t *testing.T) {
	pkg := &engine.Package{Manifest: engine.Manifest{Name: "p", Inputs: map[string]engine.Input{
		"pin":   {Type: engine.TypeNumber, Secret: true},
		"on":    {Type: engine.TypeBoolean, Secret: true},
		"conf":  {Type: engine.TypeJSON, Secret: true},
		"count": {Type: engine.TypeNumber},
	}}}
	_, err := pkg.ResolveInputs(map[string]any{
		"pin":   "s3cr3t-pin",
		"on":    "s3cr3t-on",
		"conf":  `{"password":"s3cr3t-conf`,
		"count": "twelve",
	})
	if err == nil {
		t.Fatal("bad values were accepted")
	}
	msg := err.Error()
	if strings.Contains(msg, "s3cr3t") {
		t.Errorf("the error shows a secret input's value: %s", msg)
	}
	for _, want := range []string{
		"input pin: the value (secret: not shown) is not a number",
		"input on: the value (secret: not shown) is not true or false",
		"input conf: not JSON (the value is secret: not shown)",
		`input count: "twelve" is not a number`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %s", want, msg)
		}
	}
}
