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
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/appsmith"
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
		inputs := map[string]any{}
		for k, v := range map[string]any{"baseUrl": srv.URL, "apiKey": "key-secret-1"} {
			if _, ok := pkg.Manifest.Inputs[k]; ok {
				inputs[k] = v
			}
		}
		inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: inputs})
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

// TestReference holds reference.md to the code: every command and flag of
// the runner (from its own help), every field of package.yaml and query
// files (from the load errors that list them), every JS global and every
// MODRUN_ variable the code reads.
func TestReference(t *testing.T) {
	raw, err := os.ReadFile("reference.md")
	if err != nil {
		t.Fatal(err)
	}
	ref := string(raw)
	bin := filepath.Join(t.TempDir(), "runner")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/runner").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	help := func(args ...string) string {
		out, _ := exec.Command(bin, append(args, "--help")...).Output()
		return string(out)
	}
	cmdRe := regexp.MustCompile(`(?m)^  ([a-z]+)\s{2,}`)
	flagRe := regexp.MustCompile(`--([a-z][a-z-]+)`)
	commands, flagsSeen := 0, 0
	var walk func(path []string)
	walk = func(path []string) {
		h := help(path...)
		_, cmds, _ := strings.Cut(h, "Available Commands:")
		cmds, _, _ = strings.Cut(cmds, "Flags:")
		for _, m := range cmdRe.FindAllStringSubmatch(cmds, -1) {
			if m[1] == "help" || m[1] == "completion" && len(path) > 0 {
				continue
			}
			commands++
			if !strings.Contains(ref, "runner "+strings.Join(append(path, m[1]), " ")) && !strings.Contains(ref, m[1]+`\|`) && !strings.Contains(ref, "|"+m[1]) {
				t.Errorf("reference.md does not name runner %s", strings.Join(append(path, m[1]), " "))
			}
			if m[1] != "completion" {
				walk(append(path, m[1]))
			}
		}
		_, flags, _ := strings.Cut(h, "Flags:")
		for _, m := range flagRe.FindAllStringSubmatch(flags, -1) {
			if m[1] == "help" {
				continue
			}
			flagsSeen++
			if !strings.Contains(ref, "--"+m[1]) {
				t.Errorf("reference.md does not name --%s (runner %s)", m[1], strings.Join(path, " "))
			}
		}
	}
	walk(nil)
	if commands < 13 || flagsSeen < 20 {
		t.Fatalf("read %d commands and %d flags from the runner's help: the parse is broken", commands, flagsSeen)
	}

	// Fields: the load errors list them.
	fieldsRe := regexp.MustCompile(`valid fields: ([^)]*)\)`)
	for _, c := range []struct{ file, src string }{
		{"package.yaml", "name: a\nversion: 1.0.0\nbogus: 1\n"},
		{"package.yaml", "name: a\nversion: 1.0.0\ninputs:\n  x: {bogus: 1}\n"},
		{"q.query.yaml", "url: http://h/x\nbogus: 1\n"},
		{"q.query.yaml", "url: http://h/x\nbody: {bogus: 1}\n"},
		{"q.query.yaml", "url: http://h/x\nretry: {bogus: 1}\n"},
		{"q.query.yaml", "url: http://h/x\nauth: {bogus: 1}\n"},
	} {
		files := map[string][]byte{"package.yaml": []byte("name: a\nversion: 1.0.0\n"), "m.js": []byte("export default {}")}
		files[c.file] = []byte(c.src)
		_, err := packages.Load(files, modrun.New(modrun.Options{}).Kinds()...)
		m := fieldsRe.FindStringSubmatch(fmt.Sprint(err))
		if m == nil {
			t.Errorf("%s %q: no list of valid fields in %v", c.file, c.src, err)
			continue
		}
		for _, f := range strings.Split(m[1], ", ") {
			if !strings.Contains(ref, "`"+f+"`") && !strings.Contains(ref, f+":") && !strings.Contains(ref, f+"`") {
				t.Errorf("reference.md does not name the %s field %q", c.file, f)
			}
		}
	}
	for _, g := range js.Globals {
		if !strings.Contains(ref, "`"+g) && !strings.Contains(ref, g+"`") && !strings.Contains(ref, " "+g+",") {
			t.Errorf("reference.md does not name the JS global %s", g)
		}
	}
	for _, v := range []string{"MODRUN_STORE", "MODRUN_REGISTRY", "MODRUN_APP", "MODRUN_INPUT_<NAME>", "MODRUN_HEAP_FLOOR", "XDG_DATA_HOME",
		"MODRUN_SERVER", "MODRUN_TOKEN", "XDG_STATE_HOME"} {
		if !strings.Contains(ref, v) {
			t.Errorf("reference.md does not name %s", v)
		}
	}
}

// TestComingFromAppsmith imports the guide's export and compares the
// query file it shows.
func TestComingFromAppsmith(t *testing.T) {
	guide, err := os.ReadFile("authoring.md")
	if err != nil {
		t.Fatal(err)
	}
	exRe := regexp.MustCompile("(?s)<!-- appsmith-export -->\\n```json\\n(.*?)```")
	outRe := regexp.MustCompile("(?s)<!-- appsmith-imported: (\\S+) -->\\n```yaml\\n(.*?)```")
	ex, out := exRe.FindStringSubmatch(string(guide)), outRe.FindStringSubmatch(string(guide))
	if ex == nil || out == nil {
		t.Fatal("the guide shows no Appsmith export and import")
	}
	res, err := appsmith.Import([]byte(ex[1]), appsmith.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Files[out[1]]); got != out[2] {
		t.Errorf("%s imports as\n%s\nthe guide shows\n%s", out[1], got, out[2])
	}
	if _, err := packages.Load(res.Files, modrun.New(modrun.Options{}).Kinds()...); err != nil {
		t.Errorf("the imported package does not validate: %v", err)
	}
	note := "searchUsers.queryParameters.q: the widget property SearchBox.text is now the input SearchBox_text"
	if len(res.Notes) != 1 || res.Notes[0] != note || !strings.Contains(strings.Join(strings.Fields(string(guide)), " "), note) {
		t.Errorf("notes %q; the guide says %q", res.Notes, note)
	}
}
