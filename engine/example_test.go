package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/store"
)

func ExampleSession() {
	ctx := context.Background()
	st := store.NewMemory()
	s := engine.NewSession(st, "my-app")

	s.Set(ctx, "token", json.RawMessage(`"on disk"`), true)
	s.Set(ctx, "token", json.RawMessage(`"this session only"`), false)

	mine, _ := s.Get(ctx, "token")
	persisted, _ := st.Get(ctx, "my-app", "token")
	fmt.Println(string(mine), string(persisted))
	// Output: "this session only" "on disk"
}

func ExampleFlight() {
	var f engine.Flight
	leader, isLeader := f.Join("refresh")
	follower, _ := f.Join("refresh")
	leader.Finish(json.RawMessage(`"new token"`), nil)
	v, _ := follower.Wait(context.Background())
	fmt.Println(isLeader, string(v))
	// Output: true "new token"
}

func ExampleLoop() {
	l := engine.NewLoop(nil)
	defer l.Close()
	done := make(chan string, 1)
	l.Hold() // async work started from the loop
	go func() {
		result := "from another goroutine"
		l.Release(func() { done <- result }) // handed back to the loop
	}()
	fmt.Println(<-done)
	// Output: from another goroutine
}

// ExampleOpenStore opens a store by URL: the backend registered for its
// scheme (store for files, imported here; etcdstore for etcd://) opens
// it, for an embedding program as for the runner.
func ExampleOpenStore() {
	dir, _ := os.MkdirTemp("", "example-store")
	defer os.RemoveAll(dir)
	st, err := engine.OpenStore(context.Background(), filepath.Join(dir, "tokens.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	st.Set(context.Background(), "app", "greeting", json.RawMessage(`"hi"`))
	v, _ := st.Get(context.Background(), "app", "greeting")
	fmt.Println(string(v))
	_, err = engine.OpenStore(context.Background(), "redis://user:secret@127.0.0.1:6379/0")
	fmt.Println(err)
	// Output:
	// "hi"
	// store redis://…@127.0.0.1:6379/0: no backend for redis:// (registered: file; import its package)
}

// A batch of writes and deletes queued together: with a store that
// commits in groups (bbolt, etcd) they share one commit; with one that
// does not, each is made at once. Either way, wait says when it is
// durable.
func ExampleDeleteAsync() {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(os.TempDir(), fmt.Sprintf("example-async-%d.db", os.Getpid())), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.Remove(st.Path())
	defer st.Close()
	st.Set(ctx, "history", "run-1", json.RawMessage(`"old"`))

	waits := []func() error{
		engine.SetAsync(ctx, st, "history", "run-2", json.RawMessage(`"new"`)),
		engine.DeleteAsync(ctx, st, "history", "run-1"),
	}
	for _, wait := range waits {
		if err := wait(); err != nil {
			fmt.Println(err)
		}
	}
	all, _ := st.List(ctx, "history")
	fmt.Println(len(all), string(all["run-2"]))
	// Output: 1 "new"
}

func ExampleWaited() {
	wait := engine.Waited(engine.ErrClosed)
	fmt.Println(wait())
	// Output: closed
}
