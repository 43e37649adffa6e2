package etcdstore_test

import (
	"fmt"

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
