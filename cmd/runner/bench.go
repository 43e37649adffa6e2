package main

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/benchrun"
	"github.com/modrun/modrun/store"
)

func (c *cli) benchCmd() *cobra.Command {
	var (
		sf       storeFlags
		cf       callFlags
		memStore bool
		opts     benchrun.Options
		asJSON   bool
		cpuProf  string
		memProf  string
		pool     int
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench PACKAGE TARGET",
		Short: "Run a target many times on a pool of instances; print runs/s and latency",
		Long: `Run TARGET -n times in all with -c calls in flight at once, on a pool of
instances (--instances, default one per two CPUs; calls on one instance share its event
loop, as in a server), after --warmup unmeasured runs per caller, and print runs/s,
p50/p90/p99 latency and the error count (--json: one JSON object).`,
		Example: `  runner bench ./bench/refresh auth.refresh -n 20000 -c 64 --input baseUrl=http://127.0.0.1:9000 --json`,
		Args:    exactArgs(2, "PACKAGE TARGET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNumbers(cmd, atLeast{"runs", 1}, atLeast{"concurrency", 1}, atLeast{"warmup", 0},
				atLeast{"instances", 0}, atLeast{"timeout", 0}); err != nil {
				return err
			}
			ref, target := args[0], args[1]
			in, callArgs, err := cf.parse(target)
			if err != nil {
				return err
			}
			// The package first: a mistaken PACKAGE must not make a store
			// and a keyring on its way to the error.
			pkg, err := modrun.New(modrun.Options{Registry: cf.registryDir(), Logger: c.log}).Load(ref)
			if err != nil {
				return err
			}
			eopts := modrun.Options{Registry: cf.registryDir(), Logger: c.log, Timeout: time.Minute}
			if memStore {
				eopts.Store = store.NewMemory()
			} else {
				db, err := sf.open(c)
				if err != nil {
					return err
				}
				eopts.Store = db
			}
			defer eopts.Store.Close()
			eopts.Timeout = timeout
			eng := modrun.New(eopts)
			in = envInputs(pkg, in)
			var closers []func() error
			defer func() {
				for _, cl := range closers {
					cl()
				}
			}()
			stopProfile, err := cpuProfile(cpuProf)
			if err != nil {
				return err
			}
			defer stopProfile()
			if pool <= 0 {
				// Measured on 2 cores: one loop per two CPUs leaves the other
				// for the HTTP work the callers do, and beats more loops
				// (more hand-offs) by 10-15%.
				pool = max(1, runtime.GOMAXPROCS(0)/2)
			}
			var insts []engine.Instance
			opts.Progress = c.stderr
			res, err := benchrun.Run(cmd.Context(), opts, func(i int) (func(context.Context) error, error) {
				if i < pool {
					inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{App: sf.app, Inputs: in})
					if err != nil {
						return nil, err
					}
					closers = append(closers, inst.Close)
					insts = append(insts, inst)
				}
				inst := insts[i%len(insts)]
				return func(ctx context.Context) error {
					_, err := inst.Call(ctx, target, callArgs...)
					if err != nil {
						// first_error is output like any other.
						return errors.New(inst.Redact(err.Error()))
					}
					return nil
				}, nil
			})
			if err != nil {
				return err
			}
			if memProf != "" {
				if err := writeAllocProfile(memProf); err != nil {
					return err
				}
			}
			return res.Print(c.stdout, asJSON)
		},
	}
	sf.add(cmd.Flags(), appOfRun)
	cf.add(cmd)
	cmd.Flags().BoolVar(&memStore, "memory-store", false, "use an in-memory store instead of a file")
	cmd.Flags().IntVarP(&opts.Runs, "runs", "n", 1000, "measured runs in all")
	cmd.Flags().IntVarP(&opts.Concurrency, "concurrency", "c", 1, "calls in flight at once")
	cmd.Flags().IntVar(&pool, "instances", 0, "instances in the pool, each serving concurrent calls on its event loop (default: one per two CPUs)")
	cmd.Flags().IntVar(&opts.Warmup, "warmup", 10, "unmeasured runs per caller first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "deadline of each run (default 60s)")
	cmd.Flags().StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the measured runs to this file (go tool pprof)")
	cmd.Flags().StringVar(&memProf, "memprofile", "", "write an allocation profile (warmup included) to this file (go tool pprof -sample_index=alloc_space)")
	return cmd
}

// writeAllocProfile writes the allocations made so far to path.
func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuProfile starts a CPU profile written to path (none for ""); stop
// ends it and closes the file.
func cpuProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
