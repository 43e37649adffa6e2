package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/dop251/goja"
	"github.com/tidwall/gjson"

	"github.com/modrun/modrun/internal/redact"
)

func gjsonValid(b []byte) bool { return gjson.ValidBytes(b) }

func TestRedactor(t *testing.T) {
	r := redact.New()
	r.Add("tok-123456", "tok-123456-longer", "short")
	got := r.String("a tok-123456-longer and tok-123456 and short")
	if got != "a [REDACTED] and [REDACTED] and [REDACTED]" {
		t.Fatalf("String = %q", got)
	}
	var nilR *redact.Redactor
	if nilR.String("x tok-123456") != "x tok-123456" {
		t.Fatal("a nil Redactor must pass text through")
	}
}

func TestHandler(t *testing.T) {
	r := redact.New()
	r.Add("s3cr3t-value")
	var buf bytes.Buffer
	log := slog.New(redact.Handler(slog.NewTextHandler(&buf, nil), r)).With("pre", "with s3cr3t-value")
	log.Info("msg s3cr3t-value", "k", "v s3cr3t-value", "err", errors.New("e s3cr3t-value"), slog.Group("g", "x", "s3cr3t-value"))
	if strings.Contains(buf.String(), "s3cr3t") || strings.Count(buf.String(), redact.Mask) != 5 {
		t.Fatalf("log line: %s", buf.String())
	}
}

func TestSecretKey(t *testing.T) {
	for k, want := range map[string]bool{
		"refreshtoken": true, "access_token": true, "client_secret": true, "password": true, "X-Api-Key": true,
		"api_key": true, "tokenExpiresAt": false, "expires_in": false, "username": false, "Authorization": true,
	} {
		if redact.SecretKey(k) != want {
			t.Errorf("SecretKey(%q) = %v", k, !want)
		}
	}
}

func TestLearnedSecretsAreBounded(t *testing.T) {
	r := redact.New()
	r.Add("input-secret-0")
	for i := range redact.MaxLearned + 10 {
		r.Learn(fmt.Sprintf("rotated-token-%04d", i))
	}
	r.Learn("rotated-token-0265") // known: nothing changes
	newest := fmt.Sprintf("rotated-token-%04d", redact.MaxLearned+9)
	oldest := fmt.Sprintf("rotated-token-%04d", 9)
	kept := fmt.Sprintf("rotated-token-%04d", 10)
	got := r.String(strings.Join([]string{"input-secret-0", newest, kept, oldest}, " "))
	want := strings.Join([]string{redact.Mask, redact.Mask, redact.Mask, oldest}, " ")
	if got != want {
		t.Fatalf("String = %q, want %q: inputs kept, the last %d learned kept, older ones dropped", got, want, redact.MaxLearned)
	}
	r.Learn("short") // under six bytes: ignored, as with Add
	if r.String("short") != "short" {
		t.Fatal("a short value was learned")
	}
}

func BenchmarkLearnKnown(b *testing.B) {
	r := redact.New()
	r.Learn("at-0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		r.Learn("at-0123456789abcdef")
	}
}

// BenchmarkLearnNew is the cost of a token never seen before with the
// learned list full: the replacer is rebuilt over every secret.
func BenchmarkLearnNew(b *testing.B) {
	r := redact.New()
	for i := range redact.MaxLearned {
		r.Learn(fmt.Sprintf("rotated-token-%08d", i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r.Learn(fmt.Sprintf("new-token-%08d", i))
	}
}

// BenchmarkStringFull is the cost of redacting a log line with the
// learned list full.
func BenchmarkStringFull(b *testing.B) {
	r := redact.New()
	for i := range redact.MaxLearned {
		r.Learn(fmt.Sprintf("rotated-token-%08d", i))
	}
	line := `level=INFO msg="query" module=refreshAPI status=200 ms=3 bytes=118 package=refresh-token@1.0.0 app=demo`
	b.ReportAllocs()
	for b.Loop() {
		r.String(line)
	}
}

// TestEveryForm: a declared secret is hidden at any length, and in its
// JSON-escaped, URL-escaped and base64 forms.
func TestEveryForm(t *testing.T) {
	r := redact.New()
	r.Add("4711", `pa"ss\w<rd>`, "password")
	r.Learn("tok/with+plus=")
	for _, text := range []string{
		"pin 4711",
		`{"password":"pa\"ss\\w<rd>"}`,           // JSON.stringify
		`{"password":"pa\"ss\\w\u003crd\u003e"}`, // encoding/json
		"?p=pa%22ss%5Cw%3Crd%3E",                 // query
		"/tok%2Fwith+plus=",                      // path
		"?t=tok%2Fwith%2Bplus%3D",                // query
		"basic NDcxMQ==",                         // base64 of the PIN
		"cGFzc3dvcmQ",                            // base64url, no padding
	} {
		got := r.String(text)
		if !strings.Contains(got, redact.Mask) || strings.Contains(got, "4711") || strings.Contains(got, `ss\`) || strings.Contains(got, "%5C") || strings.Contains(got, "plus") ||
			strings.Contains(got, "NDcx") || strings.Contains(got, "cGFz") {
			t.Errorf("%s -> %s", text, got)
		}
	}
	r.Learn("abc") // too short to learn
	if got := r.String("abc"); got != "abc" {
		t.Errorf("a 3-byte learned value was hidden: %s", got)
	}
}

func TestJSONMasksNestedSecretFields(t *testing.T) {
	in := `{"user":"ann","session":{"access_token":"a1","refresh_token":"r1","n":[{"apiKey":"k"}]},"expires_in":3600,"password":null}`
	got := string(redact.JSON([]byte(in)))
	want := `{"user":"ann","session":{"access_token":"[REDACTED]","refresh_token":"[REDACTED]","n":[{"apiKey":"[REDACTED]"}]},"expires_in":3600,"password":null}`
	if got != want {
		t.Fatalf("JSON:\n got %s\nwant %s", got, want)
	}
	if got := string(redact.JSON([]byte(`"plain"`))); got != `"plain"` {
		t.Fatalf("a string: %s", got)
	}
	r := redact.New()
	r.LearnJSON([]byte(in))
	if got := r.String("a1 r1 k ann"); got != "a1 r1 k ann" {
		t.Fatalf("short values were learned: %s", got)
	}
	r.LearnJSON([]byte(`{"session":{"access_token":"at-123456","deep":[{"client_secret":"cs-654321"}]}}`))
	if got := r.String("at-123456 cs-654321"); got != redact.Mask+" "+redact.Mask {
		t.Fatalf("nested secrets not learned: %s", got)
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"token":"x"}`, `[{"a":{"password":1}}]`, `{"a":"b"}`, `{`, `[1,2`, `"s"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := redact.JSON(raw)
		if gjsonValid(raw) && !gjsonValid(out) {
			t.Fatalf("JSON(%q) = %q: no longer valid", raw, out)
		}
	})
}

// TestEncodeURIComponentForm: module code that puts a secret in a URL
// itself escapes it with encodeURIComponent — a space as %20, "!" as it is —
// which neither url.QueryEscape nor url.PathEscape writes; that form is
// hidden too. (The escapes are what goja's encodeURIComponent returns.)
func TestEncodeURIComponentForm(t *testing.T) {
	r := redact.New()
	r.Add("p@ss w0rd!")
	r.Learn("tok en(1)*'x'")
	rt := goja.New()
	for _, secret := range []string{"p@ss w0rd!", "tok en(1)*'x'"} {
		v, err := rt.RunString("encodeURIComponent(" + strconv.Quote(secret) + ")")
		if err != nil {
			t.Fatal(err)
		}
		text := "GET /x?p=" + v.String()
		if got := r.String(text); got != "GET /x?p="+redact.Mask {
			t.Errorf("%q escaped by encodeURIComponent: %s -> %s", secret, text, got)
		}
	}
}
