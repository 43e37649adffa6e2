// Loading packages: the served set, SIGHUP reloads, and resolving a run's package.

package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/modrun/modrun/engine"
)

// Load loads the packages of Options.Packages and the run history. Every
// package that fails is named in the error; the others are served.
func (s *Server) Load(ctx context.Context) error {
	if err := s.history.load(ctx); err != nil {
		return err
	}
	err := s.Reload()
	s.loaded.Store(true)
	return err
}

// Reload loads Options.Packages again and forgets resolved registry
// references, so that newly published versions are served. Runs in flight
// finish on the version they started on; pools of versions no longer
// served close once idle. Schedules restart with the new versions.
func (s *Server) Reload() error {
	pinned := map[string]*engine.Package{}
	byRef := map[string]*engine.Package{}
	var errs []error
	s.mu.Lock()
	prevByRef := s.byRef
	s.mu.Unlock()
	// A package that fails to load again keeps its previous version, if it
	// had one: a bad edit does not take a served package down.
	keep := func(ref string, err error) {
		errs = append(errs, err)
		if prev := prevByRef[ref]; prev != nil {
			if _, dup := pinned[prev.Manifest.Name]; !dup {
				pinned[prev.Manifest.Name], byRef[ref] = prev, prev
				s.log.Warn("reload: keeping the previous version", "package", prev.Ref(), "error", err)
			}
		}
	}
	for _, ref := range s.opts.Packages {
		pkg, err := s.opts.Loader.Load(ref)
		if err != nil {
			keep(ref, fmt.Errorf("%s: %w", ref, err))
			continue
		}
		if prev, dup := pinned[pkg.Manifest.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: package %s is served already (%s)", ref, pkg.Manifest.Name, prev.Ref()))
			continue
		}
		// A package that cannot make an instance (a required input has
		// no value) is not served: refused at start, never "ready".
		in, err := s.opts.NewInstance(pkg, pkg.Manifest.Name, nil)
		if err != nil {
			keep(ref, fmt.Errorf("%s: package %s cannot run: %w", ref, pkg.Manifest.Name, err))
			continue
		}
		in.Close()
		byRef[ref] = pkg
		if s.opts.Secrets != nil {
			s.secrets.Add(s.opts.Secrets(pkg)...)
		}
		pinned[pkg.Manifest.Name] = pkg
	}
	s.mu.Lock()
	old := s.pools
	s.pinned, s.byRef, s.resolved, s.pools = pinned, byRef, map[string]*engine.Package{}, map[poolKey]*pool{}
	// Pools of packages still served (the same published version) carry
	// over; the rest close once their calls end.
	for k, p := range old {
		if np := s.served(k.pkg); np != nil {
			s.pools[poolKey{np, k.app}] = p
			continue
		}
		s.retire(p)
	}
	if s.sched != nil {
		s.sched.stop()
	}
	s.sched = newScheduler(s, pinned)
	s.mu.Unlock()
	for _, pkg := range pinned {
		s.log.Info("serving", "package", pkg.Ref(), "digest", pkg.Digest, "schedules", len(pkg.Manifest.Schedules))
	}
	return errors.Join(errs...)
}

// served returns the pinned package that is pkg again after a reload:
// the same published version with the same digest, or the very package
// a failed reload kept. A directory has no digest: read again, it is
// another package. s.mu is held.
func (s *Server) served(pkg *engine.Package) *engine.Package {
	p, ok := s.pinned[pkg.Manifest.Name]
	if ok && (p == pkg || pkg.Digest != "" && p.Ref() == pkg.Ref() && p.Digest == pkg.Digest) {
		return p
	}
	return nil
}

// resolve finds the package a request names: a pinned package by name, or
// (with Options.Registry) any reference the Loader resolves, remembered
// until Reload.
func (s *Server) resolve(ref string) (*engine.Package, error) {
	s.mu.Lock()
	if p, ok := s.pinned[ref]; ok {
		s.mu.Unlock()
		return p, nil
	}
	if p, ok := s.resolved[ref]; ok {
		s.mu.Unlock()
		return p, nil
	}
	s.mu.Unlock()
	if !s.opts.Registry || strings.ContainsAny(ref, `/\`) || strings.HasPrefix(ref, ".") {
		return nil, errNotFound("no package %q is served", ref)
	}
	pkg, err := s.opts.Loader.Load(ref)
	if err != nil {
		return nil, errNotFound("package %q: %v", ref, err)
	}
	s.mu.Lock()
	s.resolved[ref] = pkg
	s.mu.Unlock()
	return pkg, nil
}

// Packages returns the packages served: those of Options.Packages and,
// with a registry, the newest published version of every other name.
func (s *Server) Packages() []*engine.Package {
	s.mu.Lock()
	out := make([]*engine.Package, 0, len(s.pinned))
	names := map[string]bool{}
	for _, p := range s.pinned {
		out = append(out, p)
		names[p.Manifest.Name] = true
	}
	s.mu.Unlock()
	if l, ok := s.opts.Loader.(Lister); ok && s.opts.Registry {
		refs, err := l.Published()
		if err != nil {
			s.log.Warn("listing the registry", "error", err)
		}
		newest := map[string]string{}
		for _, r := range refs {
			name, _, _ := strings.Cut(r, "@")
			newest[name] = r
		}
		for name, ref := range newest {
			if names[name] {
				continue
			}
			if p, err := s.resolve(ref); err == nil {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref() < out[j].Ref() })
	return out
}
