package main

import (
	"strings"
	"testing"
)

// The security findings of issue 28 that a served API shows (DESIGN §17),
// against a real runner serve in both isolation modes.

// TestServeKeepsReservedNamesAndDepth: modrun.* apps and oauth2.* keys are
// out of reach of a run's app and of /v1/store writes, and a value nested
// past 1000 is refused on every write path.
func TestServeKeepsReservedNamesAndDepth(t *testing.T) {
	for _, isolate := range []string{"true", "false"} {
		t.Run("isolate="+isolate, func(t *testing.T) {
			const token = "security-token-0123456789abcdef"
			pkg := writePackage(t, map[string]string{
				"package.yaml": "name: sec\nversion: 1.0.0\n",
				"m.js": `export default {
	async put(key, v) { await storeValue(key, v); return "stored" },
	async deep(n) { let v = 0; for (let i = 0; i < n; i++) v = [v]; await storeValue("deep", v); return "stored" },
}`,
			})
			srv := startServe(t, token, pkg, "--store", t.TempDir()+"/s.db", "--isolate="+isolate)
			defer srv.stop()
			for _, app := range []string{"modrun.history", "modrun.flights", "modrun.schedules"} {
				if code, body, _ := srv.call("POST", "/v1/run/sec/m.put", `{"args": ["k", 1], "app": "`+app+`"}`); code != 400 || !strings.Contains(strings.ToLower(body["error"].(map[string]any)["message"].(string)), "reserved") {
					t.Errorf("a run with app %s: %d %v", app, code, body)
				}
				if code, body, _ := srv.call("PUT", "/v1/store/"+app+"/k", `1`); code != 400 {
					t.Errorf("PUT /v1/store/%s/k: %d %v", app, code, body)
				}
				if code, body, _ := srv.call("GET", "/v1/store/"+app, ``); code != 400 {
					t.Errorf("GET /v1/store/%s: %d %v", app, code, body)
				}
			}
			if code, body, _ := srv.call("PUT", "/v1/store/sec/oauth2.api", `{"access_token": "x"}`); code != 403 {
				t.Errorf("PUT an oauth2.* key: %d %v", code, body)
			}
			if code, body, _ := srv.call("DELETE", "/v1/store/sec/oauth2.api", ``); code != 403 {
				t.Errorf("DELETE an oauth2.* key: %d %v", code, body)
			}
			if code, body, _ := srv.call("POST", "/v1/run/sec/m.put", `{"args": ["oauth2.api", {"access_token": "x"}]}`); code != 500 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "oauth2.* keys") {
				t.Errorf("storeValue of an oauth2.* key: %d %v", code, body)
			}
			deep := strings.Repeat("[", 1001) + strings.Repeat("]", 1001)
			if code, body, _ := srv.call("PUT", "/v1/store/sec/deep", deep); code != 400 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "the limit is 1000") {
				t.Errorf("PUT a value 1001 deep: %d %v", code, body)
			}
			if code, body, _ := srv.call("POST", "/v1/run/sec/m.deep", `{"args": [9999]}`); code != 500 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "the limit is 1000") {
				t.Errorf("storeValue of a value 9999 deep: %d %v", code, body)
			}
			// The app's other runs are unharmed.
			if code, body, _ := srv.call("POST", "/v1/run/sec/m.put", `{"args": ["k", 1]}`); code != 200 {
				t.Errorf("a run after the refusals: %d %v", code, body)
			}
		})
	}
}

// TestStoreCommandRefusesReservedApps: runner store does not read or
// change modrun.* apps, and never picks one as the default app.
func TestStoreCommandRefusesReservedApps(t *testing.T) {
	db := t.TempDir() + "/s.db"
	if _, errOut, code := runCLI(t, "", "store", "list", "--store", db, "--app", "modrun.history"); code != 2 || !strings.Contains(errOut, "reserved") {
		t.Fatalf("store list of modrun.history: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "store", "set", "--store", db, "--app", "modrun.schedules", "k", "1"); code != 2 || !strings.Contains(errOut, "reserved") {
		t.Fatalf("store set in modrun.schedules: %d %s", code, errOut)
	}
}
