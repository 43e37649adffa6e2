//go:build !unix

package worker

// pollable: only Unix pipes are put on the poller.
func pollable[T any](s T) T { return s }
