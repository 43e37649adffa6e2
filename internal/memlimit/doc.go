// Package memlimit ends runs when the process's Go heap passes a limit.
//
// goja has no memory limit of its own: `new Array(1e8).fill(0)` or
// `'x'.repeat(2**31)` allocate until the Go runtime dies with a fatal
// "out of memory" that nothing can recover. A process that hosts one run
// (runner run, a worker) watches its heap instead: Watch polls it, and
// once live data passes the limit it cancels the run's context with an
// error wrapping engine.ErrMemoryLimit, so the run fails with
// "run exceeded its memory limit (256 MiB)" and the process can exit
// cleanly. The allocating goroutine itself cannot be stopped; the process
// that watched is expected to end (or, for a worker, be replaced).
//
// The check reads runtime/metrics (a few hundred nanoseconds) every 5 to
// 100 ms: sooner the faster the process allocates towards the limit, so
// that an idle process is left asleep. Only when the heap, garbage
// included, is over the limit does it force a collection to tell live
// data from garbage, so a process that merely produces garbage quickly
// is never stopped.
package memlimit
