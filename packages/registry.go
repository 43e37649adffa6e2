package packages

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/Masterminds/semver/v3"
)

// ErrExists is returned by Publish when the version is already published
// with different content.
var ErrExists = errors.New("version already published with different content")

// ErrNotFound is returned when no published package matches a reference.
var ErrNotFound = errors.New("no such package")

// Registry is a directory of published bundles:
//
//	DIR/NAME/VERSION.tgz          the bundle
//	DIR/NAME/VERSION.tgz.sha256   its digest
//	DIR/index.json                every name, version and digest
//
// A version exists once its .tgz is in place; the digest file is written
// first, so a crash mid-publish leaves no partial version. Publishers
// serialise on DIR/.lock.
type Registry struct {
	Dir string
}

// Published is one published version.
type Published struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

// Publish writes files' bundle as NAME@VERSION. Publishing the same
// content again is a no-op that returns the same digest; different
// content for a published version is refused with ErrExists.
func (r *Registry) Publish(name, version string, files map[string][]byte) (Published, error) {
	out := Published{Name: name, Version: version}
	data, digest, err := Bundle(files)
	if err != nil {
		return out, err
	}
	out.Digest = digest
	dir := filepath.Join(r.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return out, fmt.Errorf("publish %s@%s: %w", name, version, err)
	}
	unlock, err := r.lock()
	if err != nil {
		return out, fmt.Errorf("publish %s@%s: %w", name, version, err)
	}
	defer unlock()

	tgz := filepath.Join(dir, version+".tgz")
	if old, err := os.ReadFile(tgz); err == nil {
		if od := Digest(old); od != digest {
			return out, fmt.Errorf("publish %s@%s: %w: published %s, this is %s; bump the version", name, version, ErrExists, od, digest)
		}
		return out, r.writeIndex()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return out, fmt.Errorf("publish %s@%s: %w", name, version, err)
	}
	if err := writeAtomic(tgz+".sha256", []byte(digest+"\n")); err != nil {
		return out, fmt.Errorf("publish %s@%s: %w", name, version, err)
	}
	if err := writeAtomic(tgz, data); err != nil {
		return out, fmt.Errorf("publish %s@%s: %w", name, version, err)
	}
	return out, r.writeIndex()
}

// lock takes the registry's publish lock.
func (r *Registry) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(r.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// writeAtomic writes data to a temporary file, syncs it and renames it
// into place, then syncs the directory.
func writeAtomic(name string, data []byte) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (r *Registry) writeIndex() error {
	all, err := r.List()
	if err != nil {
		return err
	}
	data, _ := json.MarshalIndent(map[string]any{"packages": all}, "", "  ")
	return writeAtomic(filepath.Join(r.Dir, "index.json"), append(data, '\n'))
}

// List returns every published version, by name and then version.
func (r *Registry) List() ([]Published, error) {
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Published
	for _, e := range entries {
		if !e.IsDir() || !nameRe.MatchString(e.Name()) {
			continue
		}
		vs, err := r.versions(e.Name())
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			d, err := os.ReadFile(filepath.Join(r.Dir, e.Name(), v.Original()+".tgz.sha256"))
			if err != nil {
				continue
			}
			out = append(out, Published{Name: e.Name(), Version: v.Original(), Digest: strings.TrimSpace(string(d))})
		}
	}
	return out, nil
}

// versions returns the published versions of name, oldest first.
func (r *Registry) versions(name string) ([]*semver.Version, error) {
	entries, err := os.ReadDir(filepath.Join(r.Dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var vs []*semver.Version
	for _, e := range entries {
		s, ok := strings.CutSuffix(e.Name(), ".tgz")
		if !ok {
			continue
		}
		if v, err := semver.StrictNewVersion(s); err == nil {
			vs = append(vs, v)
		}
	}
	sort.Sort(semver.Collection(vs))
	return vs, nil
}

// Resolve finds the newest published version matching ref: NAME,
// NAME@1.2.3, NAME@^1, NAME@~1.2 (any semver constraint).
func (r *Registry) Resolve(ref string) (Published, error) {
	name, constraint, hasC := strings.Cut(ref, "@")
	if !nameRe.MatchString(name) {
		return Published{}, fmt.Errorf("%q is not a package name (NAME or NAME@VERSION-RANGE) nor a package directory", ref)
	}
	vs, err := r.versions(name)
	if err != nil {
		return Published{}, err
	}
	if len(vs) == 0 {
		return Published{}, fmt.Errorf("%s: %w in registry %s (publish it with: runner publish DIR)", name, ErrNotFound, r.Dir)
	}
	var c *semver.Constraints
	if hasC {
		if c, err = semver.NewConstraint(constraint); err != nil {
			return Published{}, fmt.Errorf("%s: bad version range %q: %v", ref, constraint, err)
		}
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if c == nil || c.Check(vs[i]) {
			return Published{Name: name, Version: vs[i].Original()}, nil
		}
	}
	have := make([]string, len(vs))
	for i, v := range vs {
		have[i] = v.Original()
	}
	return Published{}, fmt.Errorf("%s: %w matching %q; published versions: %s", ref, ErrNotFound, constraint, strings.Join(have, ", "))
}

// Open reads a published bundle and verifies it against its recorded
// digest, returning its files.
func (r *Registry) Open(p Published) (map[string][]byte, string, error) {
	base := filepath.Join(r.Dir, p.Name, p.Version+".tgz")
	want, err := os.ReadFile(base + ".sha256")
	if err != nil {
		return nil, "", fmt.Errorf("%s@%s: %w", p.Name, p.Version, err)
	}
	data, err := os.ReadFile(base)
	if err != nil {
		return nil, "", fmt.Errorf("%s@%s: %w", p.Name, p.Version, err)
	}
	got := Digest(data)
	if w := strings.TrimSpace(string(want)); got != w {
		return nil, "", fmt.Errorf("%s@%s: digest mismatch: the registry recorded %s but the bundle is %s; it was modified after publishing", p.Name, p.Version, w, got)
	}
	files, err := ReadBundle(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s@%s: %w", p.Name, p.Version, err)
	}
	return files, got, nil
}
