//go:build race

package memlimit

// raceEnabled: the race detector's shadow memory makes the resident set
// several times the heap; Watch checks only the heap.
const raceEnabled = true
