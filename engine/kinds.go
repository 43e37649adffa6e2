package engine

import (
	"fmt"
	"reflect"
	"sync"
)

var (
	kindsMu sync.RWMutex
	kinds   []Kind
)

// RegisterKind adds a module kind to every engine made after it, in this
// process and in its worker processes (which run the same program), the
// way database/sql drivers register: call it from the init of the
// package that defines the kind, and import that package in main. The
// built-in kinds (query modules, JS modules) come first; a file two kinds
// match is the first's. It panics if a kind of the same type is
// registered twice.
func RegisterKind(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	for _, had := range kinds {
		if reflect.TypeOf(had) == reflect.TypeOf(k) {
			panic(fmt.Sprintf("engine: module kind %T registered twice", k))
		}
	}
	kinds = append(kinds, k)
}

// RegisteredKinds returns the kinds RegisterKind added, in order.
func RegisteredKinds() []Kind {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	return append([]Kind(nil), kinds...)
}
