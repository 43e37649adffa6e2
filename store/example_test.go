package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/modrun/modrun/store"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := store.Open(filepath.Join(dir, "store.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// Values are JSON; a write that returned is on disk.
	db.Set(ctx, "my-app", "refreshtoken", json.RawMessage(`"rt-1"`))

	// Compare-and-swap: rotate the token only if nobody else did.
	ok, _ := db.CompareAndSwap(ctx, "my-app", "refreshtoken", json.RawMessage(`"rt-1"`), json.RawMessage(`"rt-2"`))
	stale, _ := db.CompareAndSwap(ctx, "my-app", "refreshtoken", json.RawMessage(`"rt-1"`), json.RawMessage(`"rt-3"`))
	v, _ := db.Get(ctx, "my-app", "refreshtoken")
	fmt.Println(ok, stale, string(v))
	// Output: true false "rt-2"
}

func ExampleNewMemory() {
	ctx := context.Background()
	m := store.NewMemory()
	m.Set(ctx, "app", "n", json.RawMessage(`{ "a" : 1 }`))
	v, _ := m.Get(ctx, "app", "n")
	fmt.Println(string(v))
	// Output: {"a":1}
}
