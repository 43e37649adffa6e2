// Package redact hides secrets — secret inputs, tokens — in text before it
// reaches a log line, an error message, a result or the terminal.
//
// # What is hidden
//
// A Redactor holds two sets of secrets:
//
//   - given (Add): a package's inputs declared secret: true, kept for the
//     instance's life and hidden at any length — a four-digit PIN too,
//     which then also masks those four digits wherever they appear.
//   - learned (Learn, LearnJSON): values an instance meets at run time,
//     kept for the last MaxLearned (tokens rotate; the list must not grow
//     for ever), and only from MinLearned (6) bytes up:
//   - string fields named like secrets (SecretKey: …token, …secret,
//     password, apiKey, authorization, cookie …) in responses, at any
//     depth up to 64;
//   - store values under such keys, or nested under such field names, when
//     JS reads them (appsmith.store) or stores them (storeValue,
//     compareAndSwapValue);
//   - values a binding reads through a path ending in such a key
//     (<<appsmith.store.accesstoken>>, <<this.params.refresh_token>>),
//     and values a query sends as credentials: its bearer token, its Basic
//     password and the Basic credential itself, headers and form, multipart
//     or JSON body fields named like secrets.
//
// Each secret is hidden in every form it takes in text (Forms): as it is,
// JSON-escaped (both encoding/json's and JSON.stringify's escaping),
// URL-escaped for a query and for a path, and — given secrets only —
// base64 in the standard and URL alphabets. A Basic credential is base64 of "id:secret", which no
// form of the secret alone matches: the query module learns the whole
// header value when it binds it.
//
// Handler wraps a slog.Handler so that every record passes through a
// Redactor; JSON masks the values of secret-named fields in a JSON
// document (runner store list).
//
// # What is knowingly not covered
//
//   - a secret split or transformed by JS (sliced, upper-cased, hashed,
//     concatenated without a separator into a longer word is still
//     caught; reversed or re-encoded is not);
//   - values computed by a binding expression that is not a plain path
//     (<<"Bearer " + x>>), unless the query sends them as a credential;
//   - a token learned more than MaxLearned tokens ago;
//   - learned values shorter than MinLearned bytes;
//   - learned tokens in base64 (a token is sent as it is; hiding its
//     base64 forms too would triple the cost of learning one);
//   - other encodings (hex, percent-encoding of every byte, base32).
//
// # Cost
//
// Known secrets cost a read lock and a map lookup (about 15 ns) on Learn;
// a new one rebuilds the replacer (tens of microseconds with a full list).
// String costs one pass of strings.Replacer over the text: see
// BenchmarkLogLine.
package redact
