// Package fakeclock is a manual clock for tests (a fake, named as such): time
// stands still until the test advances it, and the test can see each wait
// a component starts, so backoff pauses and watchdog timeouts are checked
// without sleeping.
//
// It keeps the wall clock and the monotonic clock apart, as a real machine
// does: Advance moves both, StepWall moves only the wall clock (an operator
// running `date`, NTP stepping a box that booted without an RTC). Waits
// (After) and Mono follow the monotonic clock.
package fakeclock

import (
	"sync"
	"time"

	"github.com/cctvd/cctvd/internal/clock"
)

// Clock is a manual clock. Its Now, Mono and After replace time.Now, a
// monotonic reading and time.After: it is a clock.Clock.
type Clock struct {
	mu      sync.Mutex
	now     time.Time     // the wall clock
	mono    time.Duration // the monotonic clock, since New
	waiters []waiter
	// Waits receives the duration of every After call, if not nil.
	waits chan time.Duration
}

var _ clock.Clock = (*Clock)(nil)

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

// Now returns the clock's wall time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Mono returns the monotonic time elapsed since New: only Advance moves it.
func (c *Clock) Mono() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// After returns a channel that receives the time once the clock has been
// advanced by d.
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

// Advance moves the clock (wall and monotonic) forward and fires every
// wait that is due.
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

// StepWall steps the wall clock by d (negative: back) and leaves the
// monotonic clock, and so every wait, as it is.
func (c *Clock) StepWall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
