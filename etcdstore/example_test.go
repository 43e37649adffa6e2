package etcdstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/etcdstore"
)

// A store URL names the endpoints, the prefix and the user; String never
// shows the password.
func ExampleParseURL() {
	c, err := etcdstore.ParseURL("etcds://modrun:hunter2@10.0.0.1:2379,10.0.0.2:2379/modrun/prod")
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Endpoints, c.Prefix, c.TLS)
	fmt.Println(c)
	// Output:
	// [10.0.0.1:2379 10.0.0.2:2379] /modrun/prod true
	// etcds://modrun@10.0.0.1:2379,10.0.0.2:2379/modrun/prod
}

// Embedding: an engine on an etcd store, shared with every other server
// on the same cluster and prefix. (Not run: it needs an etcd; the tests
// start one.)
func ExampleOpen() {
	st, err := etcdstore.Open("etcd://10.0.0.1:2379,10.0.0.2:2379/modrun/prod")
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	eng := modrun.New(modrun.Options{Store: st})
	defer eng.Close()
	pkg, err := eng.Load("./examples/refresh-token/package")
	if err != nil {
		log.Fatal(err)
	}
	inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: map[string]any{"username": "demo", "password": "demo-password"}})
	if err != nil {
		log.Fatal(err)
	}
	defer inst.Close()
	out, err := inst.Call(context.Background(), "auth.keepFresh")
	fmt.Println(string(out), err)
}
