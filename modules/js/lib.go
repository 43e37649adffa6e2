package js

import (
	"embed"
	"fmt"
	"sort"
	"sync"

	"github.com/dop251/goja"
)

// Libraries Appsmith preloads, shipped so that JS objects imported from
// Appsmith run unchanged. A runtime loads one only if a module of its
// package refers to it (its global name is a free identifier of the
// module), so other packages pay nothing. The files are the npm packages'
// own minified builds (lodash 4.18.1, moment 2.31.0), under their MIT
// licenses (lib/LICENSE.*).
//
//go:embed lib/lodash.min.js lib/moment.min.js
var libFiles embed.FS

// Library is a JS library a module may use by its global name.
type Library struct {
	Global  string // the name modules use: _ or moment
	Name    string // the npm package
	Version string
	file    string

	once sync.Once
	prog *goja.Program
	err  error
}

// Libraries are the libraries modules may use, by global name.
var Libraries = map[string]*Library{
	"_":      {Global: "_", Name: "lodash", Version: "4.18.1", file: "lib/lodash.min.js"},
	"moment": {Global: "moment", Name: "moment", Version: "2.31.0", file: "lib/moment.min.js"},
}

// program compiles the library once per process.
func (l *Library) program() (*goja.Program, error) {
	l.once.Do(func() {
		src, err := libFiles.ReadFile(l.file)
		if err != nil {
			l.err = err
			return
		}
		l.prog, l.err = goja.Compile(l.file, string(src), false)
	})
	return l.prog, l.err
}

// loadLibraries runs, in rt, the libraries the modules named use.
func loadLibraries(rt *goja.Runtime, names map[string]bool) error {
	order := make([]string, 0, len(names))
	for n := range names {
		order = append(order, n)
	}
	sort.Strings(order)
	for _, n := range order {
		lib := Libraries[n]
		prog, err := lib.program()
		if err != nil {
			return fmt.Errorf("loading %s %s: %w", lib.Name, lib.Version, err)
		}
		if _, err := rt.RunProgram(prog); err != nil {
			return fmt.Errorf("loading %s %s: %w", lib.Name, lib.Version, err)
		}
	}
	return nil
}
