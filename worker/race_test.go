//go:build race

package worker_test

// raceEnabled: the race detector's shadow memory is resident and never
// given back, so a worker's resident set says nothing of its heap.
const raceEnabled = true
