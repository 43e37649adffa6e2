package server

import (
	"sync"
	"time"
)

// Wrong-token limits: an address may send GuessBurst wrong tokens at
// once, then one per GuessEvery; past that its requests get 429 before
// the token is compared. Guessing a 16-byte token stays hopeless, and a
// client with a stale token is slowed, not locked out.
const (
	GuessBurst = 20
	GuessEvery = time.Second
)

// guesses counts wrong tokens by client address: a token bucket each,
// forgotten once full again.
type guesses struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// refill tops b up for the time since it was last used and reports
// whether it is full. g.mu is held.
func (b *bucket) refill(now time.Time) bool {
	b.tokens = min(GuessBurst, b.tokens+now.Sub(b.at).Seconds()/GuessEvery.Seconds())
	b.at = now
	return b.tokens >= GuessBurst
}

// wait is how long addr must wait before its token is looked at; 0: now.
func (g *guesses) wait(addr string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buckets[addr]
	if b == nil {
		return 0
	}
	if b.refill(time.Now()) {
		delete(g.buckets, addr)
		return 0
	}
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(GuessEvery))
}

// failed spends one of addr's wrong-token allowance.
func (g *guesses) failed(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.buckets == nil {
		g.buckets = map[string]*bucket{}
	}
	b := g.buckets[addr]
	if b == nil {
		b = &bucket{tokens: GuessBurst, at: time.Now()}
		g.buckets[addr] = b
	}
	b.refill(time.Now())
	b.tokens--
}
