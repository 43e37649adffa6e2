package termsafe_test

import (
	"fmt"
	"testing"

	"github.com/modrun/modrun/internal/termsafe"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"plain ünïcode 名前\ttab":       "plain ünïcode 名前\ttab",
		"\x1b]0;owned\x07red\x1b[31m": `\x1b]0;owned\x07red\x1b[31m`,
		"line\nbreak\r":               `line\x0abreak\x0d`,
		"evil\u202egnp.exe":           `evil\u202egnp.exe`,
		"\u009b31m":                   `\x9b31m`,
	} {
		if got := termsafe.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add("\x1b[2J\x1b]8;;http://x\x07")
	f.Fuzz(func(t *testing.T, s string) {
		out := termsafe.String(s)
		for _, r := range out {
			if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
				t.Fatalf("String(%q) = %q keeps control character %U", s, out, r)
			}
		}
	})
}

func ExampleString() {
	fmt.Println(termsafe.String("name\x1b[2Jcleared"))
	// Output: name\x1b[2Jcleared
}
