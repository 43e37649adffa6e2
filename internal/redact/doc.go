// Package redact hides secrets — secret inputs, tokens — in text before it
// reaches a log line, an error message or the terminal.
//
// A Redactor collects the values to hide (secret inputs up front; token-like
// values as an instance meets them in the store and in responses, by the
// field names SecretKey recognises), and Handler wraps a slog.Handler so
// that every record passes through it. Values shorter than six bytes are
// not hidden: they would mask ordinary words.
package redact
