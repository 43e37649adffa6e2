package redact_test

import (
	"bytes"
	"errors"
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
