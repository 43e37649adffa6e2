package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/modrun/modrun/internal/redact"
)

func TestRedactor(t *testing.T) {
	r := redact.New()
	r.Add("tok-123456", "tok-123456-longer", "short")
	got := r.String("a tok-123456-longer and tok-123456 and short")
	if got != "a [REDACTED] and [REDACTED] and short" {
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
