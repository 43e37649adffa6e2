// Command refresh-token is modrun's flagship example, end to end: it
// starts a local auth service, loads the refresh-token package into an
// embedded engine and walks through login → expiry → refresh →
// authenticated calls, printing each step and the store (tokens redacted).
//
//	go run ./examples/refresh-token            # the walk-through
//	go run ./examples/refresh-token -serve     # only the auth service, for the CLI flow
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/examples/refresh-token/authserver"
	"github.com/modrun/modrun/internal/redact"
	"github.com/modrun/modrun/packages"
	"github.com/modrun/modrun/seal"
	"github.com/modrun/modrun/store"
)

//go:embed package
var packageFS embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("refresh-token", flag.ContinueOnError)
	flags.SetOutput(stderr)
	serve := flags.Bool("serve", false, "only run the auth service (for the runner CLI walk-through)")
	port := flags.Int("port", 0, "port of the auth service on 127.0.0.1 (0: any free port; -serve defaults to 8080)")
	listen := flags.String("listen", "", "with -serve: listen on this HOST:PORT instead (0.0.0.0:8080 in a container)")
	ttl := flags.Duration("ttl", 2*time.Second, "access token lifetime")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *serve {
		if *port == 0 {
			*port = 8080
		}
		addr := *listen
		if addr == "" {
			addr = fmt.Sprintf("127.0.0.1:%d", *port)
		}
		return serveOnly(ctx, addr, *ttl, stdout, stderr)
	}
	if err := walkThrough(ctx, *port, *ttl, stdout); err != nil {
		fmt.Fprintln(stderr, "refresh-token:", err)
		return 1
	}
	return 0
}

func serveOnly(ctx context.Context, addr string, ttl time.Duration, stdout, stderr io.Writer) int {
	srv := authserver.New(authserver.Options{AccessTTL: ttl})
	if err := srv.StartOn(addr); err != nil {
		fmt.Fprintln(stderr, "refresh-token:", err)
		return 1
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "auth service on %s (user demo, password demo-password, access tokens live %s); Ctrl-C stops it\n", srv.URL(), ttl)
	<-ctx.Done()
	return 0
}

// loadPackage loads the embedded package with eng's module kinds.
func loadPackage(eng *modrun.Engine) (*engine.Package, error) {
	sub, err := fs.Sub(packageFS, "package")
	if err != nil {
		return nil, err
	}
	files, err := packages.ReadFS(sub, eng.Kinds()...)
	if err != nil {
		return nil, err
	}
	return packages.Load(files, eng.Kinds()...)
}

func walkThrough(ctx context.Context, port int, ttl time.Duration, out io.Writer) error {
	step := 0
	say := func(format string, args ...any) {
		step++
		fmt.Fprintf(out, "\n%d. %s\n", step, fmt.Sprintf(format, args...))
	}

	srv := authserver.New(authserver.Options{AccessTTL: ttl})
	if err := srv.Start(port); err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(out, "auth service on %s (access tokens live %s)\n", srv.URL(), ttl)

	dir, err := os.MkdirTemp("", "modrun-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bolt, err := store.Open(filepath.Join(dir, "store.db"), nil)
	if err != nil {
		return err
	}
	// Tokens are sealed at rest (DESIGN §17): a keyring made for this run.
	ring, _, err := seal.LoadOrCreate(filepath.Join(dir, "keys"))
	if err != nil {
		bolt.Close()
		return err
	}
	db := seal.Wrap(bolt, ring)
	defer db.Close()

	eng := modrun.New(modrun.Options{Store: db, Timeout: 30 * time.Second})
	pkg, err := loadPackage(eng)
	if err != nil {
		return err
	}
	newInstance := func() (*instance, error) {
		inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{Inputs: map[string]any{
			"baseUrl": srv.URL(), "username": "demo", "password": "demo-password",
		}})
		return &instance{inst, out}, err
	}
	inst, err := newInstance()
	if err != nil {
		return err
	}
	defer inst.Close()
	fmt.Fprintf(out, "loaded %s: %d modules, onLoad %v\n", pkg.Ref(), len(pkg.Modules), pkg.Manifest.OnLoad)

	say("log in (tokenAuth.run, then storeValue: the refresh token first)")
	if err := inst.call(ctx, "auth.login"); err != nil {
		return err
	}
	printStore(ctx, out, db, pkg.Manifest.Name)

	say("an authenticated call with the fresh access token")
	if err := inst.call(ctx, "auth.getProfile"); err != nil {
		return err
	}

	say("wait until the access token is within its refresh margin (%s)", ttl)
	time.Sleep(ttl/2 + 100*time.Millisecond)
	before := srv.Refreshes.Load()
	if err := inst.call(ctx, "auth.getProfile"); err != nil {
		return err
	}
	fmt.Fprintf(out, "   refreshed ahead of expiry: %d refresh request(s), no 401\n", srv.Refreshes.Load()-before)
	printStore(ctx, out, db, pkg.Manifest.Name)

	say("the server expires every access token early: the call gets 401, refreshes once and retries")
	srv.ExpireAccessTokens()
	before, unauthorized := srv.Refreshes.Load(), srv.Unauthorized.Load()
	if err := inst.call(ctx, "auth.getProfile"); err != nil {
		return err
	}
	fmt.Fprintf(out, "   %d 401, %d refresh request(s)\n", srv.Unauthorized.Load()-unauthorized, srv.Refreshes.Load()-before)

	say("50 concurrent calls after the access token expired share one refresh (singleFlight)")
	time.Sleep(ttl)
	before = srv.Refreshes.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := inst.Call(ctx, "auth.getProfile"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	fmt.Fprintf(out, "   50 calls succeeded with %d refresh request(s); reuse detections at the server: %d\n", srv.Refreshes.Load()-before, srv.Reuses.Load())

	say("a new instance (as a new process would be) starts: onLoad keepFresh runs first")
	inst2, err := newInstance()
	if err != nil {
		return err
	}
	defer inst2.Close()
	if err := inst2.call(ctx, "auth.getProfile"); err != nil {
		return err
	}
	printStore(ctx, out, db, pkg.Manifest.Name)

	fmt.Fprintf(out, "\ndone: %d logins, %d refreshes, %d profile calls (%d answered 401), %d refresh-token reuses\n",
		srv.Logins.Load(), srv.Refreshes.Load(), srv.Profiles.Load(), srv.Unauthorized.Load(), srv.Reuses.Load())
	return nil
}

type instance struct {
	engine.Instance
	out io.Writer
}

func (i *instance) call(ctx context.Context, target string) error {
	res, err := i.Call(ctx, target)
	if err != nil {
		return err
	}
	fmt.Fprintf(i.out, "   %s → %s\n", target, i.Redact(string(res)))
	return nil
}

// printStore prints the app's store with token values redacted.
func printStore(ctx context.Context, out io.Writer, db engine.Store, app string) {
	all, err := db.List(ctx, app)
	if err != nil {
		fmt.Fprintf(out, "   store: %v\n", err)
		return
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(out, "   store:")
	for _, k := range keys {
		v := string(all[k])
		if redact.SecretKey(k) {
			v = redact.Mask
		}
		fmt.Fprintf(out, "     %-13s %s\n", k, v)
	}
}
