// Package benchrun drives a target repeatedly on a pool of workers and
// reports throughput and latency percentiles: the engine of runner bench,
// kept apart from the CLI so that it is testable and reusable.
package benchrun
