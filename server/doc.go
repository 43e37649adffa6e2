// Package server is runner serve: modrun as a long-running service that
// apps in any language call over HTTP, that runs package schedules, and
// that operators watch through metrics, run history and a web inspector.
//
// # Basics
//
// A Server is given a Loader (how to load a package directory or resolve a
// registry reference: modrun.Engine), a function that makes instances, and
// the store. New does no I/O; Load loads the packages named in
// Options.Packages; Serve answers on a listener until its context ends, then
// shuts down gracefully. Handler is the HTTP API alone, for tests and for
// hosts with their own http.Server.
//
// The API (DESIGN §11): POST /v1/run/{package}/{target} runs and waits; POST
// /v1/runs queues; GET /v1/runs and /v1/runs/{id} read the history, which is
// kept in the store under the app HistoryApp (the last Options.History runs)
// and so survives a restart; GET /v1/packages; GET, PUT and DELETE under
// /v1/store/{app}; /healthz, /readyz, /metrics (Prometheus) and the
// inspector at /. Everything but /healthz, /readyz and the inspector's
// static files needs Authorization: Bearer TOKEN.
//
// Instances are pooled per package version and app; each instance runs its
// package's onLoad once. A request's "app" selects the store namespace.
//
// # Concurrency
//
// At most Options.MaxConcurrent runs execute at once; up to Options.Queue
// more wait; past that a request gets 429 with Retry-After. A Server is
// safe for concurrent use; Reload may be called while it serves (runs in
// flight finish on the version they started on).
//
// # Caveats
//
// Results, errors and history entries are redacted by the instance that
// produced them; the store view (/v1/store) masks secret-named keys and
// fields as runner store list does. Schedules run for the packages named
// in Options.Packages, not for every version in a registry.
//
// # Place
//
// server owns runner serve: the API, the run history, schedules, metrics,
// scoped tokens and the credential watch. It runs instances through
// what its Options give (the root package wires the worker pool or an
// in-process engine) and never imports the worker protocol or a store
// backend.
// It may import engine, binding and internal/..., none of the other parts
// (module kinds, stores, packages, worker, appsmith, seal, modtest):
// TestLayering in package engine fails if it does.
package server
