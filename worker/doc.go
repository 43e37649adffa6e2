// Package worker runs JS in child processes, so that one run cannot take
// down the process that hosts the others (DESIGN §15): goja has no memory
// limit and cannot interrupt a native call, so a run that allocates without
// bound or spins in a RegExp is contained by killing its process.
//
// # Basics
//
// A Pool, in the server, keeps Options.Size long-lived workers: the same
// binary started again with MODRUN_WORKER=1 (the re-exec pattern; a Go host
// calls modrun.WorkerMain first in main). Pool.NewInstance returns an
// engine.Instance whose calls run on a worker; the package's files, the app
// and the inputs go to a worker the first time it runs the instance there.
// An instance's calls go to its home worker (instances take the workers in
// turn), where they share one loop as they would in-process; a call moves
// to the next worker only when its home died before starting it.
//
// Serve is the worker's side: it reads requests from the parent, runs them
// on instances a Host makes, and reaches the parent for everything that
// must be shared: the store (a write a worker was told succeeded is
// durable: the parent answers after the store did), compare-and-swap, and
// singleFlight (one refresh across every worker of a server). Its logs go
// to the parent's logger, already redacted.
//
// The protocol is frames of a 4-byte big-endian length and a JSON message
// over the child's stdin and stdout. On Linux a worker also shares a
// started board with its parent (a memfd, MODRUN_WORKER_BOARD): it marks
// there the calls it begins, instead of a frame per batch; elsewhere it
// sends "started" frames. A served request thus crosses the pipe twice,
// the call and its answer (issue 33); calls, or answers, ready at once
// go in one write (sendTogether). The worker reads and writes its
// pipes through Go's poller, as the parent does: they arrive in blocking
// mode, in which a waiting read holds a thread and keeps the runtime's
// monitor waking to take its processor back. A worker starts with
// internal/monitor's GODEBUG setting, which spares it the monitor's
// futex wake-up after each idle moment, and its standard error passes
// through monitor.Filter.
//
// # Limits
//
// Each worker watches its own heap (internal/memlimit): past
// Options.MaxMemory it says so and exits, and the runs on it fail with
// "run exceeded its memory limit (256 MiB)". A call still unanswered at its
// deadline plus Options.Grace gets its worker killed: the call fails with
// "run exceeded its deadline (…)", and the other runs on that worker with an
// error saying their worker was stopped. Runs a worker had not started move
// to another; none runs twice. Dead workers are replaced, with a backoff
// when they keep dying (Options.OnRestart is told why).
//
// # Place
//
// worker owns worker processes and their protocol: frames, the pool,
// restarts, and the store, flights and log a worker reaches through its
// parent. It hosts instances through the Host interface, never a kind.
// It may import engine, binding and internal/..., none of the other parts
// (module kinds, stores, packages, server, appsmith, seal, modtest):
// TestLayering in package engine fails if it does.
package worker
