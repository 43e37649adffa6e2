package worker

import "io"

// ReadFrameForTest is readFrame, for the tests of package worker_test.
func ReadFrameForTest(r io.Reader, size int) ([]byte, error) { return readFrame(r, size) }

// StartedFramesForTest is how many "started" frames parents received.
func StartedFramesForTest() int64 { return startedFrames.Load() }
