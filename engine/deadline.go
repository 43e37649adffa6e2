package engine

import (
	"context"
	"time"
)

// CallLimit is a call's time limit: fallback, or the time left before
// ctx's deadline if that is sooner.
func CallLimit(ctx context.Context, fallback time.Duration) time.Duration {
	if d, ok := ctx.Deadline(); ok && (fallback <= 0 || time.Until(d) < fallback) {
		return time.Until(d)
	}
	return fallback
}

// RoundLimit writes a run's time limit as a person set it: 1s, not
// 999.987ms.
func RoundLimit(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d
}
