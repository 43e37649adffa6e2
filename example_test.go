package modrun_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/store"
)

// Example shows the embedding API: open a store, publish and load a
// package by version range, create an instance with inputs and an app,
// call a target, close.
func Example() {
	// A service for the package to call.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"greeting": "hello, %s"}`, r.URL.Query().Get("name"))
	}))
	defer srv.Close()

	dir, _ := os.MkdirTemp("", "modrun-example")
	defer os.RemoveAll(dir)

	// A package: one query module and one JS module.
	src := filepath.Join(dir, "greeter")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "package.yaml"), []byte("name: greeter\nversion: 1.0.0\ninputs:\n  baseUrl: {required: true}\n"), 0o644)
	os.WriteFile(filepath.Join(src, "greet.query.yaml"), []byte("url: <<inputs.baseUrl>>/greet\nquery: {name: <<this.params.name>>}\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.js"), []byte(`export default {
  async hello(name) {
    const res = await greet.run({ name });
    await storeValue("last", name);
    return res.greeting;
  },
};`), 0o644)

	db, err := store.Open(filepath.Join(dir, "store.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	eng := modrun.New(modrun.Options{Store: db, Registry: filepath.Join(dir, "registry")})
	pkg, err := packages.LoadDir(src, eng.Kinds()...)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := eng.Registry().Publish(pkg.Manifest.Name, pkg.Manifest.Version, pkg.Files); err != nil {
		log.Fatal(err)
	}

	pkg, err = eng.Load("greeter@^1")
	if err != nil {
		log.Fatal(err)
	}
	inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{
		App:    "my-app",
		Inputs: map[string]any{"baseUrl": srv.URL},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer inst.Close()

	out, err := inst.Call(context.Background(), "main.hello", []byte(`"Ada"`))
	if err != nil {
		log.Fatal(err)
	}
	last, _ := db.Get(context.Background(), "my-app", "last")
	fmt.Println(pkg.Ref(), string(out), string(last))
	// Output: greeter@1.0.0 "hello, Ada" "Ada"
}

// ExampleSetHeapFloor is how a program that embeds modrun gets the
// runner's garbage-collector setting: once, from main.
func ExampleSetHeapFloor() {
	stop, ok := modrun.SetHeapFloor(modrun.DefaultHeapFloor)
	defer stop()
	// The floor applies unless the environment chose the GC settings:
	// exactly one of the two holds.
	envChose := os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != ""
	fmt.Println(ok != envChose)
	// Output: true
}
