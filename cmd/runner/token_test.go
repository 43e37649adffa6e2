package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTokenCommands: runner token create/list/revoke, through a running
// server and on the store directly; a scoped token runs its package with
// runner run --server, and is refused, naming the scope, elsewhere.
func TestTokenCommands(t *testing.T) {
	db := t.TempDir() + "/s.db"
	pkg := kvPackage(t)
	const admin = "token-test-admin-0123456789"

	// Made on the store before the server starts: kept there (hashed).
	out, errOut, code := runBinary(t, nil, "token", "create", "early", "--scope", "read", "--store", db)
	early := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(early, "mrt_early_") || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("create on the store: %d %q %q", code, out, errOut)
	}

	srv := startServe(t, admin, "--store", db, pkg)
	defer srv.stop()
	as := func(tok string) []string { return []string{"MODRUN_TOKEN=" + tok, "MODRUN_SERVER=" + srv.url} }

	out, errOut, code = runBinary(t, as(admin), "token", "create", "ci", "--scope", "run:kv", "--expires", "30d")
	ci := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(ci, "mrt_ci_") {
		t.Fatalf("create through the server: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := runBinary(t, as(ci), "run", "kv", "m.put", "--args", `["k", 1]`); code != 0 || out != "1\n" {
		t.Fatalf("run with run:kv: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := runBinary(t, as(ci), "store", "list", "--app", "kv"); code != 1 || !strings.Contains(errOut, "token ci lacks scope read") {
		t.Fatalf("store list with run:kv: %d %q", code, errOut)
	}
	if out, errOut, code := runBinary(t, as(early), "store", "list", "--app", "kv"); code != 0 || !strings.Contains(out, `"k"`) {
		t.Fatalf("store list with read: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := runBinary(t, as(ci), "token", "list"); code != 1 || !strings.Contains(errOut, "lacks scope admin") {
		t.Fatalf("token list with run:kv: %d %q", code, errOut)
	}
	out, errOut, code = runBinary(t, as(admin), "token", "list")
	if code != 0 || !strings.Contains(out, "ci") || !strings.Contains(out, "run:kv") || !strings.Contains(out, "early") || strings.Contains(out, "mrt_") {
		t.Fatalf("token list: %d %q %q", code, out, errOut)
	}
	out, _, code = runBinary(t, as(admin), "token", "list", "--json")
	var listed []struct {
		Name   string
		Scopes []string
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil || code != 0 || len(listed) != 2 || strings.Contains(out, "hash") {
		t.Fatalf("token list --json: %d %v\n%s", code, err, out)
	}
	if _, errOut, code := runBinary(t, as(admin), "token", "revoke", "ci"); code != 0 {
		t.Fatalf("revoke: %d %q", code, errOut)
	}
	if _, errOut, code := runBinary(t, as(ci), "run", "kv", "m.put", "--args", `["k", 2]`); code != 1 || !strings.Contains(errOut, "revoked") {
		t.Fatalf("run with a revoked token: %d %q", code, errOut)
	}
	if _, errOut, code := runBinary(t, as(admin), "token", "create", "bad", "--scope", "write"); code != 2 || !strings.Contains(errOut, `scope "write"`) {
		t.Fatalf("a bad scope: %d %q", code, errOut)
	}
	if strings.Contains(srv.logText(), ci[len(ci)-20:]) || strings.Contains(srv.logText(), early[len(early)-20:]) {
		t.Error("the server log holds a token")
	}
}
