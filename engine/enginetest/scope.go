package enginetest

import (
	"fmt"

	"github.com/modrun/modrun/engine"
)

// MapScope is an engine.Scope over Go maps for tests of bindings and query
// modules: params (a map), inputs and appsmith.store resolve key by key,
// and a missing key is undefined (nil). It runs no JavaScript: Eval fails.
type MapScope struct {
	Inputs map[string]any
	Store  map[string]any
}

// Lookup implements engine.Scope.
func (s MapScope) Lookup(root string, keys []string, params any) (any, bool, error) {
	var v any
	switch root {
	case "params":
		v = params
	case "inputs":
		v = s.Inputs
	case "appsmith":
		if len(keys) == 0 || keys[0] != "store" {
			return nil, false, nil
		}
		v, keys = s.Store, keys[1:]
	default:
		return nil, false, nil
	}
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, true, nil
		}
		v = m[k]
	}
	return v, true, nil
}

// Eval implements engine.Scope; a MapScope evaluates nothing.
func (s MapScope) Eval(e engine.Expr, _ any) (any, error) {
	return nil, fmt.Errorf("enginetest.MapScope runs no JavaScript: binding %q", e.String())
}
