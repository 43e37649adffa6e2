// Package docs tests the guide: every file it shows is loaded and every
// run line executed, so the guide cannot drift from the code.
package docs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/internal/memlimit"
	"github.com/modrun/modrun/internal/yamlfile"
	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/modules/query"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/store"
)

var (
	fileRe = regexp.MustCompile("(?s)<!-- file: (\\S+) -->\\n```\\w*\\n(.*?)```")
	runRe  = regexp.MustCompile(`<!-- run: (\S+) (\S+) (.*?) => (.*?) -->`)
)

// echo answers with what it received, so a run line can show it; a name
// of "fail" gets a 500.
func echo(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/fail") {
		http.Error(w, "no", http.StatusInternalServerError)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var parsed any = string(body)
	if json.Valid(body) {
		parsed = json.RawMessage(body)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "body": parsed})
}

func TestAuthoringGuide(t *testing.T) {
	guide, err := os.ReadFile("authoring.md")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	pkgs := map[string]bool{}
	for _, m := range fileRe.FindAllStringSubmatch(string(guide), -1) {
		p := filepath.Join(root, m[1])
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(m[2]), 0o644); err != nil {
			t.Fatal(err)
		}
		pkgs[strings.SplitN(m[1], "/", 2)[0]] = true
	}
	if len(pkgs) == 0 {
		t.Fatal("the guide shows no files")
	}
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eng := modrun.New(modrun.Options{Store: db})
	loaded := map[string]*modrun.Engine{}
	for name := range pkgs {
		if _, err := packages.LoadDir(filepath.Join(root, name), eng.Kinds()...); err != nil {
			t.Errorf("the guide's package %s does not load:\n%v", name, err)
		}
		loaded[name] = eng
	}
	runs := runRe.FindAllStringSubmatch(string(guide), -1)
	if len(runs) == 0 {
		t.Fatal("the guide runs nothing")
	}
	for _, m := range runs {
		name, target, args, want := m[1], m[2], m[3], m[4]
		pkg, err := eng.Load(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: map[string]any{"baseUrl": srv.URL, "apiKey": "key-secret-1"}})
		if err != nil {
			t.Fatal(err)
		}
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(args), &raw); err != nil {
			t.Fatalf("run %s %s: args %s: %v", name, target, args, err)
		}
		out, err := inst.Call(context.Background(), target, raw...)
		inst.Close()
		if err != nil || string(out) != want {
			t.Errorf("run %s %s %s:\n got %s (%v)\nwant %s", name, target, args, out, err, want)
		}
	}
}

// TestLimitsTable: the guide's limits are the code's.
func TestLimitsTable(t *testing.T) {
	guide, err := os.ReadFile("authoring.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(guide), "## Limits")
	for _, want := range []string{
		fmt.Sprintf("default %ds", int(js.DefaultTimeout.Seconds())),
		fmt.Sprintf("default %s", strings.ReplaceAll(memlimit.Format(memlimit.DefaultLimit), " ", "")),
		fmt.Sprintf("%d levels", js.MaxJSONDepth),
		fmt.Sprintf("%d frames", js.DefaultMaxCallStack),
		fmt.Sprintf("%s,%03d values", fmt.Sprint(yamlfile.MaxNodes/1000), yamlfile.MaxNodes%1000),
		fmt.Sprintf("nesting to %d", yamlfile.MaxDepth),
		fmt.Sprintf("%d entries", packages.MaxFiles),
		fmt.Sprintf("%d MiB of contents", packages.MaxBundleSize>>20),
		fmt.Sprintf("default %d MiB", query.DefaultMaxResponseBytes>>20),
		fmt.Sprintf("default %ds", int(query.DefaultTimeout.Seconds())),
		fmt.Sprintf("default %d)", query.DefaultMaxRedirects),
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the Limits table does not say %q", want)
		}
	}
}
