package redact_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/modrun/modrun/internal/redact"
)

// FuzzEveryFormHidden: a pinned secret (a secret input, any length) is
// hidden in every form redact.Forms names — plain, JSON-escaped both ways,
// URL-escaped, base64 — whatever text surrounds it; and a learned one in
// every form but base64. (The mask is read as one character that no
// secret here holds: "[REDACTED]" itself spells some short forms, "DA"
// for one.)
func FuzzEveryFormHidden(f *testing.F) {
	for _, s := range []string{"4711", `pa"ss\w<rd>`, "tok/with+plus=", "ünï cödé", "a b&c=d", "x", "\t\n"} {
		f.Add(s, "before ", " after", true)
		f.Add(s, `{"k":"`, `"}`, false)
	}
	f.Fuzz(func(t *testing.T, secret, before, after string, pinned bool) {
		if secret == "" || !utf8.ValidString(secret) || strings.ContainsRune(secret, '\uffff') {
			return
		}
		if !pinned && len(secret) < redact.MinLearned {
			return // too short to learn, by design
		}
		r := redact.New()
		if pinned {
			r.Add(secret)
		} else {
			r.Learn(secret)
		}
		for _, form := range redact.Forms(secret, pinned) {
			got := r.String(before + form + after)
			if strings.Contains(strings.ReplaceAll(got, redact.Mask, "\uffff"), form) {
				t.Fatalf("secret %q (pinned %v): its form %q shows in %q", secret, pinned, form, got)
			}
		}
	})
}
