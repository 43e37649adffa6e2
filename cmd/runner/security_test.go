package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
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

// TestServeTokenHygiene: a token under 16 bytes or a token file others
// can read is refused at start (exit 2), naming the problem.
func TestServeTokenHygiene(t *testing.T) {
	pkg := servePackage(t, "")
	_, errOut, code := runBinary(t, []string{"MODRUN_TOKEN=short"}, "serve", pkg, "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, "at least 16") {
		t.Errorf("a 5-byte token: exit %d, %s", code, errOut)
	}
	file := t.TempDir() + "/token"
	os.WriteFile(file, []byte("a-long-enough-token-0123456789\n"), 0o644)
	_, errOut, code = runBinary(t, []string{"MODRUN_TOKEN="}, "serve", pkg, "--listen", "127.0.0.1:0", "--token-file", file)
	if code != 2 || !strings.Contains(errOut, "can be read by others") {
		t.Errorf("a world-readable token file: exit %d, %s", code, errOut)
	}
}

// TestServeLimitsWrongTokens: an address that keeps sending wrong tokens
// gets 429 with Retry-After after a burst, before its token is compared.
func TestServeLimitsWrongTokens(t *testing.T) {
	const token = "security-token-0123456789abcdef"
	srv := startServe(t, token, servePackage(t, ""), "--store", t.TempDir()+"/s.db")
	defer srv.stop()
	limited := false
	for i := range 40 {
		code, _, h := srv.callAs("wrong-token-0123456789abcdef", "GET", "/v1/packages", "")
		if code == 429 {
			if h.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			limited = true
			break
		}
		if code != 401 {
			t.Fatalf("wrong token %d: %d", i+1, code)
		}
	}
	if !limited {
		t.Fatal("40 wrong tokens in a row were all answered 401: no rate limit")
	}
}

// TestServeInspectorHeaders: the inspector's files come with a CSP that
// forbids framing, nosniff and no referrer.
func TestServeInspectorHeaders(t *testing.T) {
	const token = "security-token-0123456789abcdef"
	srv := startServe(t, token, servePackage(t, ""), "--store", t.TempDir()+"/s.db")
	defer srv.stop()
	_, _, h := srv.callAs("", "GET", "/", "")
	for name, want := range map[string]string{
		"Content-Security-Policy": "frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if !strings.Contains(h.Get(name), want) {
			t.Errorf("%s: %q, want %q", name, h.Get(name), want)
		}
	}
}

// TestServeOverTLS: --tls-cert and --tls-key serve HTTPS.
func TestServeOverTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	os.WriteFile(dir+"/cert.pem", certPEM, 0o600)
	os.WriteFile(dir+"/key.pem", keyPEM, 0o600)
	const token = "security-token-0123456789abcdef"
	srv := startServe(t, token, servePackage(t, ""), "--store", dir+"/s.db", "--tls-cert", dir+"/cert.pem", "--tls-key", dir+"/key.pem")
	defer srv.stop()
	if !strings.HasPrefix(srv.url, "https://") {
		t.Fatalf("serving on %s, want https://", srv.url)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("POST", srv.url+"/v1/run/svc/m.hello", strings.NewReader(`{"args": ["tls"]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("over TLS: %d", resp.StatusCode)
	}
}

// selfSigned makes a certificate for 127.0.0.1.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "modrun test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestServeStoreHidesSecretInputs: a secret input stored under a plain
// key is redacted in GET /v1/store like a secret-named one (issue 28).
func TestServeStoreHidesSecretInputs(t *testing.T) {
	const token = "security-token-0123456789abcdef"
	const secret = "the-api-key-0123456789"
	pkg := writePackage(t, map[string]string{
		"package.yaml": "name: sec\nversion: 1.0.0\ninputs:\n  apiKey: {secret: true, required: true}\n",
		"m.js":         `export default { async keep() { await storeValue("plain", {note: "key is " + inputs.apiKey}); return 1 } }`,
	})
	srv := startServe(t, token, pkg, "--store", t.TempDir()+"/s.db", "--input", "apiKey="+secret)
	defer srv.stop()
	if code, body, _ := srv.call("POST", "/v1/run/sec/m.keep", `{}`); code != 200 {
		t.Fatalf("keep: %d %v", code, body)
	}
	_, body, _ := srv.call("GET", "/v1/store/sec", "")
	if raw := fmt.Sprint(body); strings.Contains(raw, secret) || !strings.Contains(raw, "[REDACTED]") {
		t.Fatalf("/v1/store shows the secret input: %s", raw)
	}
	if _, body, _ := srv.call("GET", "/v1/store/sec?reveal=true", ""); !strings.Contains(fmt.Sprint(body), secret) {
		t.Fatalf("?reveal=true hides it: %v", body)
	}
}
