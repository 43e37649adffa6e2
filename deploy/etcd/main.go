// Command etcd is etcd's own server (go.etcd.io/etcd/server/v3/etcdmain),
// built here with CGO_ENABLED=0 so that it runs in an image FROM scratch:
// Debian's etcd-server links libc, and no image can be pulled. It is its
// own module, so that modrun itself never links the etcd server.
//
//	cd deploy/etcd && CGO_ENABLED=0 go build -o ../../build/etcd/etcd .
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
