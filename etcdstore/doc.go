// Package etcdstore is an engine.Store in etcd, for several servers that
// share one store (DESIGN.md §13).
//
// A store URL names it: etcd://HOST:PORT[,HOST:PORT…]/PREFIX, or etcds://
// for TLS with $MODRUN_ETCD_CA, $MODRUN_ETCD_CERT and $MODRUN_ETCD_KEY; a
// user name and password go in the URL (USER:PASSWORD@) or
// $MODRUN_ETCD_PASSWORD, and are never printed.
//
// The semantics are bbolt's (the same conformance kit passes against a
// real etcd): a write returns once etcd has committed it, CompareAndSwap is
// one transaction, values and keys have the same limits.
//
// Store also implements engine.Locker: a lock on (app, key) across every
// process on the cluster, held on a lease of LockTTL that is kept alive
// while its holder runs. Writes to (app, key) made while the lock is held
// are fenced: each is a transaction that checks the lock's key still
// belongs to this holder, so a holder whose lease expired (paused, cut
// off) gets ErrLockLost instead of overwriting a newer token. OAuth2
// refreshes lock their token sets, and JS singleFlight calls take turns
// under it (engine.TakeTurn), publishing their results under
// engine.FlightApp.
//
// # Place
//
// etcdstore owns the etcd store (etcd:// and etcds:// URLs): its layout,
// leases, fenced writes and watches.
// It may import engine, binding and internal/..., none of the other parts
// (module kinds, packages, worker, server, appsmith, seal, modtest):
// TestLayering in package engine fails if it does.
package etcdstore
