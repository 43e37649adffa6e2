package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/store"
)

// Shell completion (runner completion bash|zsh|fish|powershell, cobra's).

// completeDirs completes directories.
func completeDirs(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// complete completes runner run and bench: PACKAGE (package directories
// below the working directory and published names), then TARGET (query
// modules and module.function of the package named).
func (f *callFlags) complete(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		var out []string
		if entries, err := os.ReadDir("."); err == nil {
			for _, e := range entries {
				if e.IsDir() && fileExists(filepath.Join(e.Name(), packages.ManifestFile)) {
					out = append(out, "./"+e.Name())
				}
			}
		}
		if pubs, err := (&packages.Registry{Dir: f.registryDir()}).List(); err == nil {
			for _, p := range pubs {
				out = append(out, p.Name)
			}
		}
		return out, cobra.ShellCompDirectiveFilterDirs
	case 1:
		pkg, err := modrun.New(modrun.Options{Registry: f.registryDir()}).Load(args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return targets(pkg), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// targets lists what runner run can call in pkg: query modules by name,
// JS functions as module.function.
func targets(pkg *engine.Package) []string {
	var out []string
	for _, m := range pkg.Modules {
		if fl, ok := m.(engine.FunctionLister); ok {
			for _, fn := range fl.Functions() {
				out = append(out, m.Name()+"."+fn)
			}
			continue
		}
		out = append(out, m.Name())
	}
	sort.Strings(out)
	return out
}

// completeApps completes --app of runner store with the store's apps.
func (f *storeFlags) completeApps(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	p := f.path
	if p == "" {
		p = defaultStore()
	}
	if strings.Contains(p, "://") {
		return nil, cobra.ShellCompDirectiveNoFileComp // a server's store: no network on a key press
	}
	db, err := store.Open(p, &store.Options{Timeout: -1})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer db.Close()
	apps, _ := db.Apps()
	var out []string
	for _, a := range apps {
		if strings.HasPrefix(a, prefix) {
			out = append(out, a)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
