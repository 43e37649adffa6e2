// Package termsafe makes text from outside (an export's names, an
// authorization server's error) safe to print on a terminal: control
// characters, escape sequences among them, are shown as \x1b-style escapes
// instead of being obeyed.
package termsafe

import (
	"fmt"
	"strings"
	"unicode"
)

// String returns s with every control character (C0, DEL, C1, and the
// bidirectional overrides that reorder what a terminal shows) written as
// a visible escape; tabs stay. Printable text, any script, is unchanged.
func String(s string) string {
	if !strings.ContainsFunc(s, unsafe) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafe(r) {
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafe(r rune) bool {
	switch {
	case r == '\t':
		return false
	case r == unicode.ReplacementChar:
		return false
	case unicode.IsControl(r):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return false
}
