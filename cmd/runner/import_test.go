package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportAppsmith(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "legacy")
	out, stderr, code := runBinary(t, nil, "import", "appsmith", "../../appsmith/testdata/legacy.json", dir)
	if code != 0 || !strings.Contains(out, "imported 2 queries, 1 JS modules; 5 need attention") || !strings.Contains(out, "legacy-tool validates") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "Get Forecast: renamed to Get_Forecast") {
		t.Errorf("notes: %s", stderr)
	}
	if _, errOut, code := runCLI(t, "", "validate", dir); code != 0 {
		t.Errorf("validate: %d %s", code, errOut)
	}
	// DIR must be new or empty; a file that is no export is named.
	if _, stderr, code := runCLI(t, "", "import", "appsmith", "../../appsmith/testdata/legacy.json", dir); code != 1 || !strings.Contains(stderr, "not empty") {
		t.Errorf("into a full directory: %d %s", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(bad, []byte(`{"hello": "world"}`), 0o644)
	if _, stderr, code := runCLI(t, "", "import", "appsmith", bad, filepath.Join(t.TempDir(), "y")); code != 1 || !strings.Contains(stderr, bad+": not an Appsmith application export") {
		t.Errorf("not an export: %d %s", code, stderr)
	}
}

// TestImportReadsBounded: import reads at most 64 MiB from anything, a
// device or a FIFO included (issue 28: /dev/zero ran it out of memory).
func TestImportReadsBounded(t *testing.T) {
	_, stderr, code := runCLI(t, "", "import", "appsmith", "/dev/zero", filepath.Join(t.TempDir(), "z"))
	if code != 1 || !strings.Contains(stderr, "more than 67108864 bytes") {
		t.Fatalf("import /dev/zero: exit %d, %s", code, stderr)
	}
}

// TestImportNotesCannotDriveTheTerminal: names from the export that hold
// terminal escapes are printed escaped (issue 28).
func TestImportNotesCannotDriveTheTerminal(t *testing.T) {
	raw, err := os.ReadFile("../../appsmith/testdata/legacy.json")
	if err != nil {
		t.Fatal(err)
	}
	evil := strings.Replace(string(raw), "Get Forecast", `Get\u001b[2JForecast`, 1)
	export := filepath.Join(t.TempDir(), "evil.json")
	os.WriteFile(export, []byte(evil), 0o644)
	_, stderr, _ := runCLI(t, "", "import", "appsmith", export, filepath.Join(t.TempDir(), "e"))
	if strings.Contains(stderr, "\x1b") {
		t.Fatalf("an escape reached the terminal:\n%q", stderr)
	}
	if !strings.Contains(stderr, `\x1b[2J`) {
		t.Fatalf("the name is not shown escaped:\n%s", stderr)
	}
}

// TestImportOnePackagePerPage: runner import writes DIR/PAGE for an app
// with several pages, every package validates, and it exits 0.
func TestImportOnePackagePerPage(t *testing.T) {
	src := filepath.Join(t.TempDir(), "shop.json")
	os.WriteFile(src, []byte(`{"exportedApplication": {"name": "Shop"},
 "datasourceList": [{"name": "API", "pluginId": "restapi-plugin", "datasourceConfiguration": {"url": "https://api.example.com"}}],
 "actionList": [
  {"pluginType": "API", "unpublishedAction": {"name": "list", "pageId": "Users", "datasource": {"name": "API"}, "actionConfiguration": {"httpMethod": "GET", "path": "/users"}}},
  {"pluginType": "API", "unpublishedAction": {"name": "list", "pageId": "Orders", "datasource": {"name": "API"}, "actionConfiguration": {"httpMethod": "GET", "path": "/orders"}}}]}`), 0o644)
	dir := filepath.Join(t.TempDir(), "shop")
	out, errOut, code := runBinary(t, nil, "import", "appsmith", src, dir)
	if code != 0 || !strings.Contains(out, "2 pages, one package each") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for page, path := range map[string]string{"users": "/users", "orders": "/orders"} {
		q, err := os.ReadFile(filepath.Join(dir, page, "list.query.yaml"))
		if err != nil || !strings.Contains(string(q), path) {
			t.Errorf("%s/list.query.yaml: %v\n%s", page, err, q)
		}
		if _, errOut, code := runCLI(t, "", "validate", filepath.Join(dir, page)); code != 0 {
			t.Errorf("validate %s: %d %s", page, code, errOut)
		}
	}
}
