// Package fakeclock is a manual clock for tests (a fake, named as such): time
// stands still until the test advances it, and the test can see each wait
// a component starts, so backoff pauses and watchdog timeouts are checked
// without sleeping.
//
// Like the machine's clocks it has two faces: a wall clock (Now), which a
// test can step as an operator's `date` or an NTP correction does (Step),
// and a monotonic clock (Mono) that only Advance moves. Waits (After) run
// on the monotonic clock, as time.After does.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a manual clock. Its Now, Mono and After replace time.Now, a
// monotonic reading and time.After.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	mono    time.Duration
	waiters []waiter
	// Waits receives the duration of every After call, if not nil.
	waits chan time.Duration
}

type waiter struct {
	at time.Duration // on the monotonic clock
	ch chan time.Time
}

// New returns a clock at start. Every After call is also sent to the
// returned channel (buffered; a test that ignores it must drain or size it).
func New(start time.Time, buffer int) (*Clock, <-chan time.Duration) {
	c := &Clock{now: start, waits: make(chan time.Duration, buffer)}
	return c, c.waits
}

// Now returns the wall clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Mono returns the monotonic clock: the time advanced since New.
func (c *Clock) Mono() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// After returns a channel that receives the wall time once the clock has
// been advanced by d.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, waiter{at: c.mono + d, ch: ch})
	}
	c.mu.Unlock()
	select {
	case c.waits <- d:
	default:
	}
	return ch
}

// Advance lets d pass on both clocks and fires every wait that is due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.mono += d
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at <= c.mono {
			w.ch <- c.now
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

// Step moves the wall clock alone by d (negative: back), as `date -s` or
// an NTP step does; no time passes and no wait fires.
func (c *Clock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
