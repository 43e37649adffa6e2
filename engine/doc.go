// Package engine is the hub of modrun: the small interfaces every other
// package implements or consumes, and the pieces of run-time machinery that
// do not depend on a JavaScript engine or a database.
//
// # Basics
//
// A [Store] keeps JSON values under string keys, one namespace per app. The
// bbolt implementation lives in package store; [Session] layers the
// instance-lifetime values of storeValue(key, value, false) over a Store.
//
// A package is made of [Module] values compiled by a [Kind] (query modules,
// JS modules). A [Query] is a module that binds its templates against a
// [Scope] and sends one HTTP request, giving a [Response].
//
// A [Loop] is an event loop whose jobs run one at a time, in order, on
// whichever goroutine posted to it while it was idle: every instance runs
// its JavaScript on one, so JS never runs on two goroutines at once, and
// results of Go work reach JS without a hop to another goroutine.
//
// # Caveats
//
// engine owns the vocabulary every part shares: packages, modules, kinds
// and targets, stores and their registry, sessions, the loop, flights and
// deadlines. It imports only the standard library
// (TestEngineImportsOnlyStdlib); types of goja, bbolt or the module
// packages never appear in its API.
package engine
