// Package query implements query modules: NAME.query.yaml files, each one
// HTTP request template with bindings.
//
// # Basics
//
// Kind compiles a file into a *Module at load time, checking every binding.
// At run time, Bind evaluates the bindings against an engine.Scope (on the
// instance's loop, without I/O) and Send performs the request from any
// goroutine:
//
//	req, err := mod.Bind(scope, params)
//	resp, err := req.Send(ctx)
//
// Substitution rules are those of package binding: a value can never change
// the structure of the JSON body, URL, form or headers around it.
//
// # Limits
//
// Each module has a timeout (default 10 s), a response size limit (default
// 10 MiB; a larger body is an error, never truncated) and a redirect limit
// (default 5). A header value containing CR or LF is an error raised before
// anything is sent. Errors name the module and the host, never credentials
// or token values.
//
// # Concurrency
//
// A Module is immutable and safe for concurrent use. All modules of a Kind
// share one keep-alive transport.
//
// # Place
//
// query owns the query kind: NAME.query.yaml parsed and compiled, a
// request bound, sent, retried and read, the OAuth2 bearer and its origins.
// It may import engine, binding and internal/..., none of the other parts
// (stores, packages, worker, server, appsmith, seal, modtest): TestLayering
// in package engine fails if it does.
package query
