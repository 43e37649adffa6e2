// Instances: one pool per package version and app, made on first call,
// released when idle or when a reload retires its version.

package server

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/modrun/modrun/engine"
)

// poolKey names a pool: one package version (the loaded package itself:
// a directory edited between reloads is another package) and one app.
type poolKey struct {
	pkg *engine.Package
	app string
}

// pool is the instances of one package version for one app.
type pool struct {
	insts  []engine.Instance
	next   atomic.Uint64
	active atomic.Int64 // calls in progress; changed under Server.mu when it reaches 0
	used   atomic.Int64 // when a call last ended, in Unix nanoseconds
	// retired is set (under Server.mu) when the pool leaves the server's
	// map: the pool closes once its last call ends.
	retired bool
}

func (p *pool) close() {
	for _, in := range p.insts {
		in.Close()
	}
}

// instance returns pkg's pool's next instance for app, making the pool
// on first use, and a done function the caller calls when its call is
// over. A pool counts its calls under s.mu, so that a pool found idle
// and released is never handed out meanwhile.
func (s *Server) instance(pkg *engine.Package, app string) (engine.Instance, func(), error) {
	k := poolKey{pkg, app}
	s.mu.Lock()
	p, ok := s.pools[k]
	if !ok {
		p = &pool{}
		obs := s.metrics.observer(pkg.Manifest.Name, app)
		for range s.opts.Instances {
			in, err := s.opts.NewInstance(pkg, app, obs)
			if err != nil {
				s.mu.Unlock()
				p.close()
				return nil, nil, err
			}
			p.insts = append(p.insts, in)
		}
		s.pools[k] = p
		s.metrics.instances.Add(float64(len(p.insts)))
	}
	p.active.Add(1)
	s.mu.Unlock()
	in := p.insts[p.next.Add(1)%uint64(len(p.insts))]
	return in, func() { s.release(p) }, nil
}

// release ends one call of p; the last call of a retired pool closes it.
func (s *Server) release(p *pool) {
	p.used.Store(time.Now().UnixNano())
	if p.active.Add(-1) > 0 {
		return
	}
	s.mu.Lock()
	closeNow := p.retired && p.active.Load() == 0 && p.insts != nil
	if closeNow {
		s.closePool(p)
	}
	s.mu.Unlock()
}

// retire takes p out of service: it closes now if no call is using it,
// else when its last call ends. s.mu is held.
func (s *Server) retire(p *pool) {
	p.retired = true
	if p.active.Load() == 0 {
		s.closePool(p)
	}
}

// closePool releases p's instances (in the server and in every worker
// that loaded them) in the background. s.mu is held.
func (s *Server) closePool(p *pool) {
	insts := p.insts
	p.insts = nil
	s.metrics.instances.Sub(float64(len(insts)))
	go func() {
		for _, in := range insts {
			in.Close()
		}
	}()
}

// releaseIdle retires the pools that no call has used for
// Options.IdleInstance: memory stays flat however many apps come and go.
func (s *Server) releaseIdle(now time.Time) int {
	cutoff := now.Add(-s.opts.IdleInstance).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, p := range s.pools {
		if p.active.Load() == 0 && p.used.Load() < cutoff {
			delete(s.pools, k)
			s.retire(p)
			n++
		}
	}
	return n
}

// reaper releases idle pools until ctx ends.
func (s *Server) reaper(ctx context.Context) {
	every := min(max(s.opts.IdleInstance/4, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n := s.releaseIdle(now); n > 0 {
				s.log.Debug("released idle instances", "pools", n)
				if n >= 100 {
					// Many at once: give their memory back, so that the
					// resident set follows the apps in use.
					debug.FreeOSMemory()
				}
			}
		}
	}
}
