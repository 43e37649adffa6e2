// Package modrun runs Appsmith-style packages of query and JS modules
// headless: the embedding API over engine, store, packages and the module
// kinds.
//
//	db, err := store.Open(path, nil)
//	eng := modrun.New(modrun.Options{Store: db, Registry: dir})
//	pkg, err := eng.Load("refresh-token@^1")        // or a directory
//	inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: map[string]any{"baseUrl": url}})
//	defer inst.Close()
//	out, err := inst.Call(ctx, "auth.getProfile")
//
// An Engine is safe for concurrent use; loaded packages are compiled once
// per version and shared by all instances. Instances of one engine share
// single-flight calls (singleFlight in JS), so concurrent refreshes of one
// token collapse into one request.
//
// modrun is wiring: it may import every part (the kinds, store, packages,
// worker); parts never import it, nor one another (TestLayering).
package modrun
