package appsmith_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/appsmith"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/store"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden renders a result as one text: every file, then the notes.
func golden(r *appsmith.Result) string {
	var names []string
	for n := range r.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "# package %s: %d queries, %d JS modules, %d notes\n", r.Name, r.Queries, r.JSModules, len(r.Notes))
	for _, n := range names {
		fmt.Fprintf(&b, "\n=== %s\n%s", n, r.Files[n])
	}
	return b.String()
}

// TestImportGolden: each export in testdata imports to the golden files,
// and each validates (crm.json used navigateTo, which kept it from
// loading until page actions became headless no-ops).
func TestImportGolden(t *testing.T) {
	for _, c := range []struct {
		file      string
		validates bool
	}{{"crm.json", true}, {"legacy.json", true}, {"crm-users.json", true}} {
		t.Run(c.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			res, err := appsmith.Import(data, appsmith.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := golden(res)
			path := filepath.Join("testdata", strings.TrimSuffix(c.file, ".json")+".golden")
			if *update {
				os.WriteFile(path, []byte(got), 0o644)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("differs from %s:\n%s", path, got)
			}
			_, err = packages.Load(res.Files, modrun.New(modrun.Options{}).Kinds()...)
			if c.validates && err != nil {
				t.Errorf("the imported package does not validate:\n%v", err)
			}
			if !c.validates && err == nil {
				t.Errorf("an import using Appsmith's libraries validated")
			}
		})
	}
}

// TestImportedFunctionRuns: a JS object calling two APIs with await and
// storeValue runs headless and sends what the Appsmith actions would.
func TestImportedFunctionRuns(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s?%s %s %s", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Api-Key"), body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v2/users":
			io.WriteString(w, `[{"id": 1}, {"id": 2}, {"id": 3}]`)
		default:
			io.WriteString(w, `{"id": 42}`)
		}
	}))
	defer srv.Close()
	data, _ := os.ReadFile("testdata/crm-users.json")
	res, err := appsmith.Import(data, appsmith.Options{Name: "crm"})
	if err != nil {
		t.Fatal(err)
	}
	files := res.Files
	pkg, err := packages.Load(files, modrun.New(modrun.Options{}).Kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	db := store.NewMemory()
	db.Set(context.Background(), "crm", "apiKey", json.RawMessage(`"key-123"`))
	eng := modrun.New(modrun.Options{Store: db})
	inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: map[string]any{
		"usersApiUrl": srv.URL + "/v2", "apiCrmExampleComUrl": srv.URL, "NameInput_text": "Ada", "EmailInput_text": "ada@example.com", "SearchInput_text": "a b",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	out, err := inst.Call(context.Background(), "Users.save")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"id":42,"total":3}` {
		t.Errorf("result %s", out)
	}
	if v, _ := db.Get(context.Background(), "crm", "lastCreated"); string(v) != "42" {
		t.Errorf("storeValue: lastCreated = %s", v)
	}
	// onLoad (Users.refresh) ran first: page 1; then save: createUser, page 2.
	want := []string{
		"GET /v2/users?search=a+b&page=1 key-123 ",
		"POST /users?  {\n  \"name\": \"Ada\",\n  \"email\": \"ada@example.com\",\n  \"tags\": [\"crm\", \"new\"]\n}",
		"GET /v2/users?search=a+b&page=2 key-123 ",
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNotAnExport(t *testing.T) {
	deep := `{"exportedApplication": {"name": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`
	for _, s := range []string{`[]`, `{}`, `{"name": 1}`, `not json`, `{"actionList": 3}`, deep} {
		_, err := appsmith.Import([]byte(s), appsmith.Options{})
		if err == nil || !strings.Contains(err.Error(), "not an Appsmith application export") {
			t.Errorf("%s: err = %v", s, err)
		}
	}
}

func TestHostileNames(t *testing.T) {
	ex := `{"exportedApplication": {"name": "../../etc"}, "actionList": [
		{"pluginType": "API", "unpublishedAction": {"name": "../../evil", "datasource": {"name": "DEFAULT_REST_DATASOURCE", "datasourceConfiguration": {"url": "http://h"}}, "actionConfiguration": {"path": "/{{ ) }}"}}},
		{"pluginType": "API", "unpublishedAction": {"name": "a/b", "actionConfiguration": {}}}],
		"actionCollectionList": [{"unpublishedCollection": {"name": "..", "body": "export default { f() { return 1 } }"}}]}`
	res, err := appsmith.Import([]byte(ex), appsmith.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name := range res.Files {
		if strings.Contains(name, "/") || strings.Contains(name, "..") || strings.HasPrefix(name, ".") {
			t.Errorf("a file named %q", name)
		}
	}
	if res.Name != "etc" {
		t.Errorf("package name %q", res.Name)
	}
	joined := strings.Join(res.Notes, "\n")
	if !strings.Contains(joined, "not valid JavaScript") || !strings.Contains(joined, "renamed to") {
		t.Errorf("notes:\n%s", joined)
	}
}

// FuzzImport: any bytes import or fail with an error; an import writes
// only plain file names and always a package.yaml. Its seeds are whole
// exports of several KB, and the fuzzing engine minimizes each input that
// finds new code for up to a minute by default, running nothing else
// meanwhile (7-12 inputs in 20 s); fuzz it with a short minimization:
//
//	go test -run '^$' -fuzz FuzzImport -fuzzminimizetime 3s ./appsmith
func FuzzImport(f *testing.F) {
	for _, name := range []string{"crm.json", "legacy.json", "crm-users.json"} {
		data, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(data)
	}
	f.Add([]byte(`{"actionList": [{"pluginType": "API", "unpublishedAction": {"name": "x"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := appsmith.Import(data, appsmith.Options{})
		if err != nil {
			return
		}
		for name := range res.Files {
			if strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
				t.Fatalf("a file named %q", name)
			}
		}
		if _, ok := res.Files["package.yaml"]; !ok {
			t.Fatal("no package.yaml")
		}
	})
}

// TestPagesAreNamespaces: the same action and JS object names on two
// pages were silently overwritten (issue 30); each page is now its own
// package, both validate, nothing is missing, and actions deleted in the
// editor are skipped and listed.
func TestPagesAreNamespaces(t *testing.T) {
	api := func(page, name, path string) map[string]any {
		return map[string]any{"id": page + "_" + name, "pluginType": "API", "pluginId": "restapi-plugin",
			"unpublishedAction": map[string]any{"name": name, "pageId": page,
				"datasource":          map[string]any{"name": "API", "pluginId": "restapi-plugin"},
				"actionConfiguration": map[string]any{"httpMethod": "GET", "path": path}}}
	}
	js := func(page, body string) map[string]any {
		return map[string]any{"id": page + "_Logic", "unpublishedCollection": map[string]any{"name": "Logic", "pageId": page, "pluginType": "JS", "body": body}}
	}
	deleted := api("Orders", "oldQuery", "/old")
	deleted["unpublishedAction"].(map[string]any)["deletedAt"] = "2024-01-01T00:00:00Z"
	export := map[string]any{
		"exportedApplication": map[string]any{"name": "Shop"},
		"datasourceList":      []any{map[string]any{"name": "API", "pluginId": "restapi-plugin", "datasourceConfiguration": map[string]any{"url": "https://api.example.com"}}},
		"actionList":          []any{api("Users", "list", "/users"), api("Orders", "list", "/orders"), deleted},
		"actionCollectionList": []any{
			js("Users", "export default { async count() { return (await list.run()).length } }"),
			js("Orders", "export default { async total() { return (await list.run()).length * 2 } }"),
		},
	}
	data, _ := json.Marshal(export)
	results, err := appsmith.ImportPages(data, appsmith.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d packages; want one per page", len(results))
	}
	want := map[string]string{"users": "/users", "orders": "/orders"}
	for _, res := range results {
		if res.Dir == "" || res.Name != "shop-"+res.Dir || want[res.Dir] == "" {
			t.Fatalf("package %q in %q", res.Name, res.Dir)
		}
		if !strings.Contains(string(res.Files["list.query.yaml"]), want[res.Dir]) || res.Files["Logic.js"] == nil {
			t.Errorf("%s: list or Logic missing:\n%s", res.Dir, golden(res))
		}
		dir := t.TempDir()
		for n, b := range res.Files {
			os.WriteFile(filepath.Join(dir, n), b, 0o644)
		}
		if _, err := packages.LoadDir(dir, modrun.New(modrun.Options{}).Kinds()...); err != nil {
			t.Errorf("%s does not validate: %v", res.Dir, err)
		}
		notes := strings.Join(res.Notes, "\n")
		if res.Dir == "orders" && !strings.Contains(notes, "oldQuery: skipped: deleted in the editor") {
			t.Errorf("orders: the deleted action is not listed:\n%s", notes)
		}
		if res.Files["oldQuery.query.yaml"] != nil {
			t.Errorf("%s: a deleted action was imported", res.Dir)
		}
	}
	// One page asked for: one package, in DIR itself.
	one, err := appsmith.ImportPages(data, appsmith.Options{Page: "Orders"})
	if err != nil || len(one) != 1 || one[0].Dir != "" || !strings.Contains(string(one[0].Files["list.query.yaml"]), "/orders") {
		t.Fatalf("--page Orders: %v %v", one, err)
	}
}

// TestHardCodedCredentials: a credential typed into an action's headers
// or query (Authorization, Cookie, X-Api-Key, api_key) never reaches the
// package: it becomes a secret input without a default, listed in the
// notes; bound values stay bindings.
func TestHardCodedCredentials(t *testing.T) {
	data := []byte(`{"exportedApplication": {"name": "Gh"},
 "datasourceList": [{"name": "GH", "pluginId": "restapi-plugin", "datasourceConfiguration": {"url": "https://api.github.example"}}],
 "actionList": [{"pluginType": "API", "unpublishedAction": {"name": "repos", "pageId": "Page1", "datasource": {"name": "GH"},
  "actionConfiguration": {"httpMethod": "GET", "path": "/user/repos",
   "headers": [{"key": "Authorization", "value": "token ghp_SECRET1234567890"}, {"key": "Cookie", "value": "session=SECRETcookie"},
               {"key": "X-Api-Key", "value": "SECRETkey-42"}, {"key": "X-Trace", "value": "{{appsmith.store.trace}}"}, {"key": "Accept", "value": "application/json"}],
   "queryParameters": [{"key": "api_key", "value": "SECRETq"}, {"key": "token", "value": "{{appsmith.store.tok}}"}]}}}]}`)
	res, err := appsmith.Import(data, appsmith.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range res.Files {
		if strings.Contains(string(b), "SECRET") {
			t.Errorf("%s holds a hard-coded credential:\n%s", name, b)
		}
	}
	manifest := string(res.Files["package.yaml"])
	for _, in := range []string{"repos_headers_Authorization", "repos_headers_Cookie", "repos_headers_X_Api_Key", "repos_queryParameters_api_key"} {
		if !strings.Contains(manifest, in+": {secret: true") {
			t.Errorf("no secret input %s:\n%s", in, manifest)
		}
		if !strings.Contains(strings.Join(res.Notes, "\n"), "now the secret input "+in) {
			t.Errorf("no note for %s: %v", in, res.Notes)
		}
	}
	q := string(res.Files["repos.query.yaml"])
	if !strings.Contains(q, "{{appsmith.store.trace}}") || !strings.Contains(q, "{{appsmith.store.tok}}") || !strings.Contains(q, "application/json") {
		t.Errorf("bound or harmless values changed:\n%s", q)
	}
	dir := t.TempDir()
	for n, b := range res.Files {
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	if _, err := packages.LoadDir(dir, modrun.New(modrun.Options{}).Kinds()...); err != nil {
		t.Errorf("does not validate: %v", err)
	}
}

// TestPageCodeRunsHeadless: console.log stays console.log (it became
// inputs.console_log, a TypeError at run time), and navigateTo,
// showModal, closeModal, resetWidget, download and copyToClipboard no
// longer keep the package from loading: they log and do nothing.
func TestPageCodeRunsHeadless(t *testing.T) {
	data := []byte(`{"exportedApplication": {"name": "Con"},
 "actionCollectionList": [{"unpublishedCollection": {"name": "Logic", "pageId": "Page1", "pluginType": "JS",
  "body": "export default { async f() { console.log('hi', Input1.text); await navigateTo('Page2'); showModal('m'); closeModal('m'); resetWidget('w'); download('x', 'y.txt'); copyToClipboard('c'); return 1 } }"}}]}`)
	res, err := appsmith.Import(data, appsmith.Options{})
	if err != nil {
		t.Fatal(err)
	}
	js := string(res.Files["Logic.js"])
	if !strings.Contains(js, "console.log('hi', inputs.Input1_text)") {
		t.Errorf("console.log rewritten:\n%s", js)
	}
	pkg, err := packages.Load(res.Files, modrun.New(modrun.Options{}).Kinds()...)
	if err != nil {
		t.Fatalf("does not load: %v", err)
	}
	var log strings.Builder
	var mu sync.Mutex
	eng := modrun.New(modrun.Options{Store: store.NewMemory(), Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: map[string]any{"Input1_text": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if out, err := inst.Call(context.Background(), "Logic.f"); err != nil || string(out) != "1" {
		t.Fatalf("Logic.f: %s %v", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{`msg="hi x"`, `msg="headless: navigateTo ignored"`, `msg="headless: copyToClipboard ignored"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, log.String())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestOtherPluginsAreStubs: code calling a database action loaded as
// inputs.X_run(), a TypeError at run time; the action is now a stub
// module with its name, so the package loads, other functions run, and
// calling the stub fails naming the action and its plugin.
func TestOtherPluginsAreStubs(t *testing.T) {
	data := []byte(`{"exportedApplication": {"name": "Db"},
 "actionList": [{"pluginType": "DB", "pluginId": "postgres-plugin", "unpublishedAction": {"name": "listOrders", "pageId": "Page1"}}],
 "actionCollectionList": [{"unpublishedCollection": {"name": "Logic", "pageId": "Page1", "pluginType": "JS",
  "body": "export default { async orders() { return (await listOrders.run()).length }, two() { return 2 } }"}}]}`)
	res, err := appsmith.Import(data, appsmith.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Files["Logic.js"]), "await listOrders.run()") {
		t.Errorf("the call was rewritten:\n%s", res.Files["Logic.js"])
	}
	pkg, err := packages.Load(res.Files, modrun.New(modrun.Options{}).Kinds()...)
	if err != nil {
		t.Fatalf("does not load: %v", err)
	}
	inst, err := modrun.New(modrun.Options{Store: store.NewMemory()}).NewInstance(pkg, modrun.InstanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if out, err := inst.Call(context.Background(), "Logic.two"); err != nil || string(out) != "2" {
		t.Fatalf("Logic.two: %s %v", out, err)
	}
	_, err = inst.Call(context.Background(), "Logic.orders")
	if err == nil || !strings.Contains(err.Error(), "listOrders: a postgres-plugin action; modrun runs REST and GraphQL only") {
		t.Fatalf("Logic.orders: %v", err)
	}
}

// TestListedNotDropped: custom JS libraries (with their URLs) and
// functions that ran when a page unloaded are listed, not dropped in
// silence (issue 30).
func TestListedNotDropped(t *testing.T) {
	data := []byte(`{"exportedApplication": {"name": "Libs"},
 "customJSLibList": [{"name": "jspdf", "url": "https://cdn.example.com/jspdf.umd.min.js", "accessor": ["jspdf"]}],
 "actionList": [{"pluginType": "JS", "unpublishedAction": {"name": "bye", "pageId": "Page1", "collectionId": "Logic", "fullyQualifiedName": "Logic.bye", "runBehaviour": "ON_PAGE_UNLOAD"}}],
 "actionCollectionList": [{"unpublishedCollection": {"name": "Logic", "pageId": "Page1", "pluginType": "JS", "body": "export default { bye() { return 1 } }"}}]}`)
	res, err := appsmith.Import(data, appsmith.Options{})
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{"custom JS library jspdf (https://cdn.example.com/jspdf.umd.min.js)", "Logic.bye: ran when the page unloaded"} {
		if !strings.Contains(notes, want) || !strings.Contains(string(res.Files["README.md"]), want) {
			t.Errorf("not listed: %s\n%s", want, notes)
		}
	}
}

// TestAppsmithContextInputs: appsmith.user, appsmith.URL and
// appsmith.mode become inputs with empty defaults, so code reading them
// runs headless (and can be given them).
func TestAppsmithContextInputs(t *testing.T) {
	data := []byte(`{"exportedApplication": {"name": "Ctx"},
 "actionCollectionList": [{"unpublishedCollection": {"name": "Logic", "pageId": "Page1", "pluginType": "JS",
  "body": "export default { who() { return [appsmith.user.email ?? 'nobody', appsmith.URL.queryParams, appsmith.mode] } }"}}]}`)
	res, err := appsmith.Import(data, appsmith.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := packages.Load(res.Files, modrun.New(modrun.Options{}).Kinds()...)
	if err != nil {
		t.Fatalf("does not load: %v\n%s", err, golden(res))
	}
	eng := modrun.New(modrun.Options{Store: store.NewMemory()})
	for _, c := range []struct {
		inputs map[string]any
		want   string
	}{
		{nil, `["nobody",null,""]`},
		{map[string]any{"appsmith_user": map[string]any{"email": "ada@example.com"}, "appsmith_mode": "PUBLISHED"}, `["ada@example.com",null,"PUBLISHED"]`},
	} {
		inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: c.inputs})
		if err != nil {
			t.Fatal(err)
		}
		out, err := inst.Call(context.Background(), "Logic.who")
		inst.Close()
		if err != nil || string(out) != c.want {
			t.Errorf("%v: %s %v; want %s", c.inputs, out, err, c.want)
		}
	}
}
