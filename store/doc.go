// Package store holds modrun's store backends: DB, a durable store in one
// bbolt file, and Memory, an in-process store for tests and throwaway runs.
// Both implement engine.Store and pass enginetest.TestStore.
//
// # Basics
//
//	db, err := store.Open("/var/lib/modrun/store.db", nil)
//	if err != nil { ... }
//	defer db.Close()
//	err = db.Set(ctx, "my-app", "refreshtoken", json.RawMessage(`"abc"`))
//
// Each app is one bbolt bucket; keys are strings, values canonical JSON.
//
// # Durability and concurrency
//
// A write that returned nil has been fsync'd. Concurrent writes are grouped
// into one commit (group commit): while one commit is being synced the next
// writers queue up, and all of them share the following commit. A single
// writer never waits for company, so its latency is one fsync.
//
// # Caveats
//
// bbolt locks its file: a second process opening the same file waits
// Options.Timeout (default 5 s) and then fails with an error wrapping
// engine.ErrLocked that names the file. A file that is not a store fails
// with engine.ErrCorrupt, never a panic.
//
// # Place
//
// store owns the bbolt store (file: URLs) and the in-memory one.
// It may import engine, binding and internal/..., none of the other parts
// (module kinds, packages, worker, server, appsmith, seal, modtest):
// TestLayering in package engine fails if it does.
package store
