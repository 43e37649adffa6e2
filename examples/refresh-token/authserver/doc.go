// Package authserver is the small auth service the refresh-token example
// talks to. It behaves like a real one where it matters: access tokens
// expire, refresh tokens rotate on every use, reusing a spent refresh
// token revokes its whole family (RFC 9700 §4.14.2), an expired access
// token gets 401 with WWW-Authenticate, and errors are JSON bodies with an
// OAuth "error" code. It listens on 127.0.0.1 only.
package authserver
