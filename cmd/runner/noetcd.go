//go:build noetcd

package main

// noEtcd says why an etcd:// store is refused: this runner was built
// without the etcd client.
const noEtcd = "this runner was built with -tags noetcd, without the etcd client: build it without that tag for etcd:// stores"
