package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/modrun/modrun/engine"
)

// scheduler runs the schedules of the pinned packages. A schedule whose
// previous run is still going when it is due is skipped and counted.
type scheduler struct {
	s      *Server
	pkgs   map[string]*engine.Package
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func newScheduler(s *Server, pkgs map[string]*engine.Package) *scheduler {
	ctx, cancel := context.WithCancel(context.Background())
	return &scheduler{s: s, pkgs: pkgs, ctx: ctx, cancel: cancel}
}

// start begins every schedule (once; a stopped scheduler stays stopped).
func (sc *scheduler) start() {
	sc.once.Do(func() {
		if sc.ctx.Err() != nil {
			return
		}
		parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
		for _, pkg := range sc.pkgs {
			for _, sched := range pkg.Manifest.Schedules {
				next := func(t time.Time) time.Time { return t.Add(sched.Every) }
				if sched.Cron != "" {
					cs, err := parser.Parse(sched.Cron)
					if err != nil { // checked at load; a package built by hand
						sc.s.log.Error("schedule: bad cron expression", "package", pkg.Ref(), "schedule", sched.String(), "error", err)
						continue
					}
					next = cs.Next
				}
				sc.wg.Add(1)
				go sc.loop(pkg, sched, next)
			}
		}
	})
}

// stop ends the schedules; runs they started go on.
func (sc *scheduler) stop() {
	sc.once.Do(func() {}) // a scheduler stopped before it started never starts
	sc.cancel()
	sc.wg.Wait()
}

func (sc *scheduler) loop(pkg *engine.Package, sched engine.Schedule, next func(time.Time) time.Time) {
	defer sc.wg.Done()
	var running atomic.Bool
	name := sched.String()
	for due := next(time.Now()); ; due = next(time.Now()) {
		t := time.NewTimer(time.Until(due))
		select {
		case <-sc.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !running.CompareAndSwap(false, true) {
			sc.s.metrics.skipped.WithLabelValues(pkg.Manifest.Name, name).Inc()
			sc.s.log.Info("schedule: skipped, the previous run is still going", "package", pkg.Ref(), "schedule", name)
			continue
		}
		r := &Run{Package: pkg.Manifest.Name, Version: pkg.Manifest.Version, Target: sched.Run,
			App: pkg.Manifest.Name, Trigger: TriggerSchedule, Status: StatusQueued}
		wait, release, err := sc.s.admit()
		if err != nil {
			running.Store(false)
			sc.s.log.Warn("schedule: not started", "package", pkg.Ref(), "schedule", name, "error", err)
			continue
		}
		j := &job{run: r, pkg: pkg, args: sched.Args}
		sc.s.history.add(r, true)
		sc.s.metrics.schedules.WithLabelValues(pkg.Manifest.Name, name).Inc()
		go func() {
			defer running.Store(false)
			sc.s.execute(context.Background(), j, wait, release)
		}()
	}
}
