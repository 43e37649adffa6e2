//go:build !noetcd

package main

// etcd:// and etcds:// stores. Built without them (-tags noetcd), runner
// starts without the etcd client's package init (about 5 ms a start; see
// bench/README.md, "The etcd store").
import _ "github.com/modrun/modrun/etcdstore"
