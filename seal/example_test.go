package seal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modrun/modrun/seal"
	"github.com/modrun/modrun/store"
)

func ExampleWrap() {
	dir, _ := os.MkdirTemp("", "seal-example")
	defer os.RemoveAll(dir)

	ring, _, err := seal.LoadOrCreate(filepath.Join(dir, "keys"))
	if err != nil {
		panic(err)
	}
	db, err := store.Open(filepath.Join(dir, "store.db"), nil)
	if err != nil {
		panic(err)
	}
	st := seal.Wrap(db, ring)
	defer st.Close()

	ctx := context.Background()
	st.Set(ctx, "my-app", "refreshtoken", json.RawMessage(`"rt-123"`))
	v, _ := st.Get(ctx, "my-app", "refreshtoken")
	raw, _ := db.Get(ctx, "my-app", "refreshtoken")
	fmt.Println(string(v))
	fmt.Println(string(raw[:18]) + "…")
	// Output:
	// "rt-123"
	// "modrun-sealed:1:k…
}
