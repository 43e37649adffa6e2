package fixturekind_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modrun/modrun"
	_ "github.com/modrun/modrun/examples/fixturekind" // registers NAME.fixture.json
	"github.com/modrun/modrun/store"
)

// Example adds a module kind from outside modrun: importing the package
// registers it, and a package's users.fixture.json becomes a module that
// JS runs like a query.
func Example() {
	dir, _ := os.MkdirTemp("", "fixture-pkg")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: demo\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "users.fixture.json"), []byte(`[{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]`), 0o644)
	os.WriteFile(filepath.Join(dir, "main.js"), []byte(`export default {
	async names() { return (await users.run()).map(u => u.name) },
}`), 0o644)

	eng := modrun.New(modrun.Options{Store: store.NewMemory()})
	pkg, err := eng.Load(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	inst, _ := eng.NewInstance(pkg, modrun.InstanceOptions{})
	defer inst.Close()
	out, err := inst.Call(context.Background(), "main.names")
	fmt.Println(string(out), err)
	out, err = inst.Call(context.Background(), "users") // a target, like a query module
	fmt.Println(string(out), err)
	// Output:
	// ["Ada","Grace"] <nil>
	// [{"id":1,"name":"Ada"},{"id":2,"name":"Grace"}] <nil>
}

// Example_badFile: a file the kind cannot compile is a load problem naming
// it, like any other module's.
func Example_badFile() {
	dir, _ := os.MkdirTemp("", "fixture-pkg")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "package.yaml"), []byte("name: demo\nversion: 1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "users.fixture.json"), []byte(`[{"id": 1,]`), 0o644)
	_, err := modrun.New(modrun.Options{}).Load(dir)
	fmt.Println(err)
	// Output:
	// users.fixture.json:1:1: not JSON: invalid character ']' looking for beginning of object key string
}
