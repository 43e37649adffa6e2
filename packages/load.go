package packages

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/modrun/modrun/binding"
	"github.com/modrun/modrun/engine"
)

// Limits on a package's source.
const (
	MaxFiles    = 1000
	MaxFileSize = 4 << 20
)

// LoadDir reads the package in dir and loads it (see Load).
func LoadDir(dir string, kinds ...engine.Kind) (*engine.Package, error) {
	files, err := ReadDir(dir, kinds...)
	if err != nil {
		return nil, err
	}
	return Load(files, kinds...)
}

// ReadDir reads a package's files: package.yaml, README.md and every file
// a kind claims, in subfolders too. Other files are left out. Links are
// not followed.
func ReadDir(dir string, kinds ...engine.Kind) (map[string][]byte, error) {
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no %s: is this a package directory? (runner new DIR makes one)", dir, ManifestFile)
		}
		return nil, err
	}
	files, err := ReadFS(os.DirFS(dir), kinds...)
	if err != nil {
		return nil, fmt.Errorf("read package %s: %w", dir, err)
	}
	return files, nil
}

// ReadFS is ReadDir for a package at the root of fsys (an embedded
// package, say), with the same limits.
func ReadFS(fsys fs.FS, kinds ...engine.Kind) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Hidden folders, and tests/ (runner test's cases and
			// cassettes: not part of the package, nor of its bundle).
			if p != "." && strings.HasPrefix(d.Name(), ".") || p == "tests" {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !wanted(p, kinds) {
			return nil
		}
		if len(files) >= MaxFiles {
			return fmt.Errorf("more than %d files", MaxFiles)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > MaxFileSize {
			return fmt.Errorf("%s is %d bytes, the limit is %d", p, info.Size(), MaxFileSize)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files[p] = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

func wanted(p string, kinds []engine.Kind) bool {
	if p == ManifestFile || p == "README.md" {
		return true
	}
	for _, k := range kinds {
		if _, ok := k.Match(p); ok {
			return true
		}
	}
	return false
}

// Load checks and compiles a package from its files (slash-separated paths
// relative to the package root). It runs every load check — the manifest,
// module names, every module and binding, onLoad targets — and returns all
// problems at once as a *ProblemList.
func Load(files map[string][]byte, kinds ...engine.Kind) (*engine.Package, error) {
	var errs []error
	data, ok := files[ManifestFile]
	if !ok {
		return nil, engine.Errorf(ManifestFile, 0, 0, "missing: every package has a package.yaml")
	}
	m, err := ParseManifest(data)
	if err != nil {
		if m == nil {
			return nil, joinErrors([]error{err})
		}
		errs = append(errs, err)
	}

	// Discover modules by file name.
	type src struct {
		path string
		kind engine.Kind
	}
	byName := map[string]src{}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	info := &engine.PackageInfo{Name: m.Name, Version: m.Version, Inputs: m.Inputs, Modules: map[string]string{}, Credentials: m.OAuth2}
	for _, p := range paths {
		for _, k := range kinds {
			name, ok := k.Match(p)
			if !ok {
				continue
			}
			switch {
			case !engine.IsIdentifier(name):
				errs = append(errs, engine.Errorf(p, 0, 0, "module name %q is not a JS identifier: rename the file (letters, digits, _ and $)", name))
			case byName[name].path != "":
				errs = append(errs, engine.Errorf(p, 0, 0, "module %q is defined twice: %s and %s", name, byName[name].path, p))
			case name == "appsmith" || name == "inputs" || name == "params":
				errs = append(errs, engine.Errorf(p, 0, 0, "module name %q is reserved", name))
			default:
				byName[name] = src{p, k}
				info.Modules[name] = p
			}
			break
		}
	}
	if len(byName) == 0 {
		errs = append(errs, engine.Errorf(ManifestFile, 0, 0, "the package has no modules (NAME.query.yaml or NAME.js files)"))
	}

	// The credentials compile once, here, against the module names: query
	// modules and JS realms use these.
	// (Their syntax and inputs were checked with the manifest, with
	// lines: only a manifest without problems adds what is left, such as
	// a module name no module has.)
	bindings, cerr := binding.CompileCredentials(m.OAuth2, binding.PackageNames(info.Modules))
	if cerr != nil && err == nil {
		errs = append(errs, cerr)
	}
	info.Bindings = bindings
	pkg := &engine.Package{Manifest: *m, Files: files, Bindings: bindings}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := byName[n]
		mod, err := s.kind.Compile(engine.Source{Name: n, Path: s.path, Data: files[s.path], Pkg: info})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pkg.Modules = append(pkg.Modules, mod)
	}
	// onLoad and schedules run JS functions: each must resolve to one
	// (their syntax was checked with the manifest).
	jsFunction := func(t string) error {
		tg, err := engine.ParseTarget(t)
		if err != nil {
			return err
		}
		if m := pkg.Module(tg.Module); m != nil {
			if _, isQuery := m.(engine.Query); isQuery {
				return fmt.Errorf("%s is not a JS module", tg.Module)
			}
		} else if _, listed := info.Modules[tg.Module]; listed {
			return nil // its compile error is reported already
		}
		_, err = pkg.Resolve(tg)
		return err
	}
	for _, t := range m.OnLoad {
		if err := jsFunction(t); err != nil {
			errs = append(errs, engine.Errorf(ManifestFile, 0, 0, "onLoad %q: %v", t, err))
		}
	}
	for i, sc := range m.Schedules {
		if err := jsFunction(sc.Run); err != nil {
			errs = append(errs, engine.Errorf(ManifestFile, 0, 0, "schedules[%d] %s: %v", i, sc, err))
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return pkg, nil
}
