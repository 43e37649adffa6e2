// Package seal keeps a store's values encrypted at rest: Wrap puts a
// sealing layer over any engine.Store (bbolt's, etcd's), so that the file
// or the etcd keyspace holds no token, secret or stored value in clear.
//
// # Basics
//
//	ring, _, err := seal.LoadOrCreate("/var/lib/modrun/keys")
//	if err != nil { ... }
//	db, err := store.Open("/var/lib/modrun/store.db", nil)
//	if err != nil { ... }
//	st := seal.Wrap(db, ring) // use st wherever an engine.Store goes
//
// Each value is sealed with XChaCha20-Poly1305 (golang.org/x/crypto) under
// the keyring's first key, with a random 24-byte nonce, and bound to its
// app and key as additional data: a sealed value copied to another key
// does not open. It is stored as a JSON string,
// "modrun-sealed:1:KEYID:BASE64", so that any backend holds it unchanged.
// App names and keys stay in clear: stores look them up.
//
// # Keyrings
//
// A keyring file has one key per line, ID:BASE64 (32 bytes); the first
// seals, all open; # starts a comment. LoadKeyring refuses a file others
// may read. To rotate: AddKey puts a new key first; once every process
// using the store has reloaded the keyring (runner serve does on SIGHUP),
// Rekey (engine.Rekeyer) re-seals every value under it while the store is
// in use; then the old key can be removed from the file.
//
// # Caveats
//
// Values stored before sealing are read as they are and sealed when next
// written, or by Rekey. A value sealed by a key the keyring lacks fails
// with ErrUnknownKey, naming the key id. CompareAndSwap costs a read
// before the swap, as sealed texts differ even for equal values.
//
// # Place
//
// seal owns sealing at rest: a wrapper over any engine.Store, keyrings and
// rekeying. It knows no backend.
// It may import engine, binding and internal/..., none of the other parts
// (module kinds, stores, packages, worker, server, appsmith, modtest):
// TestLayering in package engine fails if it does.
package seal
