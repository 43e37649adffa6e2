// Package modtest runs a package's test cases (runner test): each case a
// call with its arguments and an expected result, its HTTP answered from
// a recorded cassette, or recorded against the real API with --record;
// secrets are kept out of cassettes as placeholders.
//
// # Place
//
// modtest owns test files, cassettes, recording and replay. It imports
// engine, binding and internal/... and none of the other parts: the
// caller gives it the instance to run (TestLayering in package engine
// fails if it imports one).
package modtest
