package appsmith_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/modrun/modrun/appsmith"
)

// bigExport is an export of about 1 MB: 4 pages of REST actions with
// headers, query parameters and bodies, and a JS object per page.
func bigExport(tb testing.TB) []byte {
	var actions, colls []any
	for p := range 4 {
		page := fmt.Sprintf("Page%d", p)
		var fns string
		for i := range 450 {
			name := fmt.Sprintf("get%d", i)
			actions = append(actions, map[string]any{"pluginType": "API", "unpublishedAction": map[string]any{
				"name": name, "pageId": page, "datasource": map[string]any{"name": "API"},
				"actionConfiguration": map[string]any{"httpMethod": "POST", "path": fmt.Sprintf("/items/%d/{{this.params.id}}", i),
					"headers":         []any{map[string]any{"key": "Accept", "value": "application/json"}, map[string]any{"key": "X-Trace", "value": "{{appsmith.store.trace}}"}},
					"queryParameters": []any{map[string]any{"key": "q", "value": "{{SearchInput.text}}"}},
					"body":            `{"name": "{{NameInput.text}}", "n": {{this.params.n}}, "tags": ["a", "b"]}`,
					"formData":        map[string]any{"apiContentType": "application/json"}}}})
			fns += fmt.Sprintf("  async f%d() { const r = await get%d.run({id: %d, n: 1}); await storeValue(\"k%d\", r); return r },\n", i, i, i, i)
		}
		colls = append(colls, map[string]any{"unpublishedCollection": map[string]any{"name": "Logic", "pageId": page, "pluginType": "JS",
			"body": "export default {\n" + fns + "};"}})
	}
	data, err := json.Marshal(map[string]any{"exportedApplication": map[string]any{"name": "Big"},
		"datasourceList": []any{map[string]any{"name": "API", "pluginId": "restapi-plugin", "datasourceConfiguration": map[string]any{"url": "https://api.example.com"}}},
		"actionList":     actions, "actionCollectionList": colls})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// BenchmarkImport1MB: DESIGN §19's budget is a 1 MB export in under a
// second. go test ./appsmith -bench Import1MB
func BenchmarkImport1MB(b *testing.B) {
	data := bigExport(b)
	b.ResetTimer()
	for range b.N {
		res, err := appsmith.ImportPages(data, appsmith.Options{})
		if err != nil || len(res) != 4 || res[0].Queries != 450 {
			b.Fatalf("%d packages, %v", len(res), err)
		}
	}
	b.ReportMetric(float64(len(data))/1e6, "MB")
}
