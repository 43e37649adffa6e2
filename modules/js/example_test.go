package js_test

import (
	"context"
	"fmt"
	"log"

	"github.com/modrun/modrun/modules/js"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/store"
)

func ExampleNewInstance() {
	pkg, err := packages.Load(map[string][]byte{
		"package.yaml": []byte("name: counter\nversion: 1.0.0\n"),
		"counter.js": []byte(`export default {
  n: 0,
  async inc(by) {
    this.n += by;
    await storeValue("n", this.n);
    return appsmith.store.n;
  },
};`),
	}, js.Kind{})
	if err != nil {
		log.Fatal(err)
	}
	inst := js.NewInstance(pkg, js.Options{Store: store.NewMemory()})
	defer inst.Close()
	inst.Call(context.Background(), "counter.inc", []byte("2"))
	out, err := inst.Call(context.Background(), "counter.inc", []byte("3"))
	fmt.Println(string(out), err)
	// Output: 5 <nil>
}
