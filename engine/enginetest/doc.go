// Package enginetest holds conformance suites for the engine's interfaces.
// Every backend runs them:
//
//	func TestConformance(t *testing.T) {
//		enginetest.TestStore(t, func(t *testing.T) engine.Store { return myBackend(t) })
//	}
package enginetest
