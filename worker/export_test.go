package worker

import "io"

// ReadFrameForTest is readFrame, for the tests of package worker_test.
func ReadFrameForTest(r io.Reader, size int) ([]byte, error) { return readFrame(r, size) }
