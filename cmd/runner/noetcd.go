//go:build noetcd

package main

import (
	"context"
	"errors"

	"github.com/modrun/modrun/engine"
)

// Built without the etcd client, runner still knows the etcd schemes: it
// refuses them saying why (never quoting the URL, which may hold a
// password).
func init() {
	refuse := func(context.Context, string) (engine.Store, error) {
		return nil, errors.New("etcd:// stores: this runner was built with -tags noetcd, without the etcd client: build it without that tag")
	}
	engine.RegisterStore("etcd", refuse)
	engine.RegisterStore("etcds", refuse)
}
