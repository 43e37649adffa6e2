package modtest

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/modrun/modrun/internal/redact"
)

// FuzzPlaceholders: whatever a recorded token or secret input holds, and
// whatever text surrounds it, none of the forms it travels in is left in a
// cassette's text once placeholders are applied. (Values holding "__" are
// left out: a placeholder's own name could spell them.)
func FuzzPlaceholders(f *testing.F) {
	for _, s := range []string{"rt+abc/def==", `s3cr"et+/=&x`, "at<&>1234", "ünï cödé", "a b c d"} {
		f.Add(s, "refresh_token=", "&x=1", true)
		f.Add(s, `{"t":"`, `"}`, false)
	}
	f.Fuzz(func(t *testing.T, value, before, after string, input bool) {
		if len(value) < 4 || !utf8.ValidString(value) || strings.Contains(value, "__") {
			return // shorter ones are not replaced, by design
		}
		var p *placeholders
		if input {
			p = newPlaceholders(map[string]string{"secret": value})
		} else {
			p = newPlaceholders(nil)
			body, _ := json.Marshal(map[string]string{"refresh_token": value})
			p.learn(body)
		}
		for _, form := range redact.Forms(value, input) {
			got := p.apply(before + form + after)
			// A placeholder is read as one character no value holds.
			got = strings.NewReplacer("__input_secret__", "\uffff", "__token_1__", "\uffff").Replace(got)
			if !strings.ContainsRune(value, '\uffff') && strings.Contains(got, form) {
				t.Fatalf("value %q (input %v): its form %q is in %q", value, input, form, got)
			}
		}
	})
}
