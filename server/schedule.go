package server

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/internal/cronexpr"
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
		for _, pkg := range sc.pkgs {
			for _, sched := range pkg.Manifest.Schedules {
				// Periods are aligned to the clock (multiples of Every
				// since the zero time), so that every server sharing the
				// store sees the same due times and one claims each.
				next := func(t time.Time) time.Time { return t.Truncate(sched.Every).Add(sched.Every) }
				if sched.Cron != "" {
					cs, err := cronexpr.Parse(sched.Cron)
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

// ScheduleApp is the store app where servers sharing a store claim each
// period of a schedule.
const ScheduleApp = "modrun.schedules"

// claim reports whether this server won the period due of a schedule: a
// compare-and-swap of the schedule's last claimed period, so that across
// every server on one store (etcd) one runs it. A store that fails the
// claim fails the period, logged.
func (sc *scheduler) claim(pkg *engine.Package, name string, due time.Time) bool {
	ctx, cancel := context.WithTimeout(sc.ctx, 5*time.Second)
	defer cancel()
	key := pkg.Manifest.Name + " " + name
	want := json.RawMessage(strconv.FormatInt(due.UnixMilli(), 10))
	for {
		old, err := sc.s.opts.Store.Get(ctx, ScheduleApp, key)
		if errors.Is(err, engine.ErrNotFound) {
			old, err = nil, nil
		}
		if err != nil {
			sc.s.log.Warn("schedule: not started: claiming the period", "package", pkg.Ref(), "schedule", name, "error", err)
			return false
		}
		if old != nil {
			if last, err := strconv.ParseInt(string(old), 10, 64); err == nil && last >= due.UnixMilli() {
				return false
			}
		}
		ok, err := sc.s.opts.Store.CompareAndSwap(ctx, ScheduleApp, key, old, want)
		if err != nil {
			sc.s.log.Warn("schedule: not started: claiming the period", "package", pkg.Ref(), "schedule", name, "error", err)
			return false
		}
		if ok {
			return true
		}
		// Another server claimed first; re-read: it may have claimed an
		// earlier period.
	}
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
		if !sc.claim(pkg, name, due) {
			continue // another server sharing the store runs this period
		}
		if !running.CompareAndSwap(false, true) {
			sc.s.metrics.skipped.WithLabelValues(pkg.Manifest.Name, name).Inc()
			sc.s.log.Info("schedule: skipped, the previous run is still going", "package", pkg.Ref(), "schedule", name)
			continue
		}
		r := &Run{Package: pkg.Manifest.Name, Version: pkg.Manifest.Version, Target: sched.Run,
			App: pkg.Manifest.Name, Trigger: TriggerSchedule, Status: StatusQueued}
		j := &job{run: r, pkg: pkg, args: sched.Args}
		if _, err := sc.s.submit(context.Background(), j, false, func() { running.Store(false) }); err != nil {
			running.Store(false)
			sc.s.log.Warn("schedule: not started", "package", pkg.Ref(), "schedule", name, "error", err)
			continue
		}
		sc.s.metrics.schedules.WithLabelValues(pkg.Manifest.Name, name).Inc()
	}
}
