// A package's targets: whether it has one, and what GET /v1/packages
// says of it (modules, functions, schedules).

package server

import (
	"encoding/json"

	"github.com/modrun/modrun/engine"
)

// target checks that pkg has target: a query module, or a function of a
// JS module.
func target(pkg *engine.Package, t string) error {
	tg, err := engine.ParseTarget(t)
	if err == nil {
		_, err = pkg.Resolve(tg)
	}
	if err != nil {
		return errNotFound("package %s: %v", pkg.Ref(), err)
	}
	return nil
}

// modules describes pkg's modules for /v1/packages.
func modules(pkg *engine.Package) []moduleInfo {
	out := make([]moduleInfo, 0, len(pkg.Modules))
	for _, m := range pkg.Modules {
		mi := moduleInfo{Name: m.Name(), Kind: "js", Functions: []string{}}
		if _, ok := m.(engine.Query); ok {
			mi.Kind = "query"
		}
		if fl, ok := m.(engine.FunctionLister); ok {
			mi.Functions = fl.Functions()
		}
		out = append(out, mi)
	}
	return out
}

type moduleInfo struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	Functions []string `json:"functions"`
}

type scheduleInfo struct {
	Every string            `json:"every,omitempty"`
	Cron  string            `json:"cron,omitempty"`
	Run   string            `json:"run"`
	Args  []json.RawMessage `json:"args,omitempty"`
}

type packageInfo struct {
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Digest      string         `json:"digest"`
	Description string         `json:"description,omitempty"`
	Modules     []moduleInfo   `json:"modules"`
	Schedules   []scheduleInfo `json:"schedules"`
}

func describe(pkg *engine.Package) packageInfo {
	pi := packageInfo{Name: pkg.Manifest.Name, Version: pkg.Manifest.Version, Digest: pkg.Digest,
		Description: pkg.Manifest.Description, Modules: modules(pkg), Schedules: []scheduleInfo{}}
	for _, sc := range pkg.Manifest.Schedules {
		si := scheduleInfo{Cron: sc.Cron, Run: sc.Run, Args: sc.Args}
		if sc.Every > 0 {
			si.Every = sc.Every.String()
		}
		pi.Schedules = append(pi.Schedules, si)
	}
	return pi
}
