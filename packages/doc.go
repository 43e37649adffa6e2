// Package packages loads, validates, bundles and publishes modrun packages.
//
// # Basics
//
// A package is a directory with a package.yaml and module files
// (NAME.query.yaml, NAME.js, in subfolders too). Load reads and checks one
// — the manifest, every module, every binding — reporting every problem
// at once with file:line. The module kinds are passed in, so this package
// depends only on engine:
//
//	pkg, err := packages.LoadDir("./my-package", query.NewKind(), js.Kind{})
//
// # Bundles and the registry
//
// Bundle writes a deterministic .tgz (sorted entries, zero times, fixed
// modes): the same files always give the same sha256 digest. A Registry is
// a directory of NAME/VERSION.tgz files and an index of digests. Publishing
// is atomic (temporary file, then rename) and immutable: a version, once
// published, never changes. Open verifies the digest before loading.
//
// Reading a bundle treats it as hostile: absolute paths, "..", links,
// oversized entries and bad gzip are errors, and nothing is ever written
// to disk — a bundle is read into memory.
//
// # Place
//
// packages owns package.yaml, loading a package (its modules compiled by
// the kinds given, its credentials compiled once), bundles, digests and the
// registry.
// It may import engine, binding and internal/..., none of the other parts
// (module kinds, stores, worker, server, appsmith, seal, modtest):
// TestLayering in package engine fails if it does.
package packages
