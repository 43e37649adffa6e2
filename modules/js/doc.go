// Package js runs JS modules — export default { ... } objects — in goja,
// and hosts whole packages: an Instance is one goja runtime and one event
// loop holding every module of a package, the store session and the inputs.
//
// # Basics
//
//	inst := js.NewInstance(pkg, js.Options{Store: db, App: "my-app", Inputs: inputs})
//	defer inst.Close()
//	out, err := inst.Call(ctx, "auth.refreshAccessToken", nil)
//
// Kind compiles NAME.js once per package version (export default is
// rewritten in place, keeping line and column numbers past the first line);
// instances run the precompiled programs.
//
// # Host and realm
//
// An Instance schedules: its loop, the runs, deadlines and the watchdog,
// blocking work off the loop (host.go, instance.go, run.go, loop.go; no
// goja there). A realm (vm.go and the globals' files) is one goja runtime
// with the package's modules; it reaches the instance only through the
// host interface — the run it serves, holds on the loop, blocking work and
// its context, the OAuth2 client — and its env: package, options, store
// session, logger, redactor. A discarded realm is rebuilt on the next call.
//
// # Globals
//
// appsmith.store (a read-only view), storeValue(key, value, persist = true),
// removeValue(key), clearStore(), compareAndSwapValue(key, old, new),
// singleFlight(key, asyncFn), inputs, every module of the package by name,
// console.*, setTimeout/clearTimeout/setInterval/clearInterval, showAlert.
// Nothing else: no file system, no network except through query modules.
//
// # Concurrency
//
// All JavaScript of an instance runs on its loop, one job at a time; calls
// are queued there, and results of Go work (HTTP, timers, durable writes)
// come back as jobs on the loop. A call's HTTP requests run on the calling
// goroutine while it waits. Instances are independent and run in
// parallel. An Instance's methods are safe for concurrent use.
//
// # Durability
//
// storeValue(key, value) is visible through appsmith.store at once and its
// promise resolves when the value is on disk; Call returns only once every
// storeValue of the run is durable, awaited or not.
//
// # Deadlines
//
// Every call has a deadline (Options.Timeout, default 60 s, or the
// context's). A synchronous loop past it is interrupted; pending awaits are
// abandoned and their HTTP requests cancelled. A runtime that was
// interrupted or overflowed its stack is discarded and rebuilt on the next
// call: module variables start over.
//
// # Place
//
// js owns the JS kind: NAME.js compiled, the instance that schedules its
// runs and the realm (goja) that runs them, the JS globals.
// It may import engine, binding and internal/..., none of the other parts
// (stores, packages, worker, server, appsmith, seal, modtest): TestLayering
// in package engine fails if it does.
package js
