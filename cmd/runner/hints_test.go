package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun/internal/redact"
)

// TestHintsNameRealCommands: every `runner …` command line that the code
// (help, examples, error hints) or the docs show a user names commands
// and flags that exist (issue 32: hints named some that did not).
func TestHintsNameRealCommands(t *testing.T) {
	root := (&cli{redact: redact.New()}).root()
	root.InitDefaultCompletionCmd() // cobra adds it when it runs
	files := repoFiles(t, "*.go", "../../*.go", "../../*/*.go", "../../*/*/*.go", "../../*.md", "../../docs/*.md", "../../deploy/*.md", "../../examples/*/*.md", "../../examples/*/*/*.md")
	// A command line: "runner" and what follows up to the end of the
	// code span, string or line.
	line := regexp.MustCompile("runner((?: +[^ `\"'\n|;&)]+)+)")
	flag := regexp.MustCompile(`^--([a-z][a-z0-9-]*)`)
	checked := 0
	for f, data := range files {
		for i, text := range strings.Split(data, "\n") {
			for _, loc := range line.FindAllStringSubmatchIndex(text, -1) {
				m := []string{text[loc[0]:loc[1]], text[loc[2]:loc[3]]}
				// Shown as a command (a code span, a line of its own):
				// its first word must be a command.
				md := strings.HasSuffix(f, ".md")
				code := md && loc[0] > 0 && text[loc[0]-1] == '`' || loc[0] == len(text)-len(strings.TrimLeft(text, " \t$"))
				words := strings.Fields(m[1])
				// Prose ends the command line: "runner store commands,
				// when --app is not given" is a sentence.
				for k, w := range words {
					if strings.ContainsAny(w, ",()") || prose[w] {
						words = words[:k]
						break
					}
				}
				// The command: the longest run of leading words that are
				// subcommands.
				cmd := root
				n := 0
				for n < len(words) {
					sub := findSub(cmd, words[n])
					if sub == nil {
						break
					}
					cmd, n = sub, n+1
				}
				if cmd == root {
					if code && len(words) > 0 && regexp.MustCompile(`^[a-z]+$`).MatchString(words[0]) {
						t.Errorf("%s:%d: %q: runner has no command %q", f, i+1, strings.TrimSpace(m[0]), words[0])
					}
					continue // prose: "the runner binary", "runner's store"
				}
				checked++
				for _, w := range words[n:] {
					fm := flag.FindStringSubmatch(w)
					if fm == nil {
						continue
					}
					if cmd.Flags().Lookup(fm[1]) == nil && cmd.InheritedFlags().Lookup(fm[1]) == nil && fm[1] != "help" {
						t.Errorf("%s:%d: %q: runner %s has no flag --%s", f, i+1, strings.TrimSpace(m[0]), cmd.CommandPath()[len("runner "):], fm[1])
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d command lines: the scan is broken", checked)
	}
}

func findSub(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name || s.HasAlias(name) {
			return s
		}
	}
	return nil
}

// prose are words that end a command line quoted in a sentence.
var prose = map[string]bool{"that": true, "when": true, "which": true, "commands": true, "and": true, "or": true,
	"is": true, "are": true, "uses": true, "with": true, "the": true, "to": true, "as": true}

// repoFiles reads the files the globs match, tests left out: path → text.
func repoFiles(t *testing.T, globs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, glob := range globs {
		m, _ := filepath.Glob(glob)
		for _, f := range m {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = string(data)
		}
	}
	return out
}
