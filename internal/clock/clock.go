// Package clock is cctvd's time as its components take it: the wall clock
// for what people read and what names footage, the monotonic clock for what
// orders waits and retries (a wall clock stepped back, by an operator or by
// NTP on a box without an RTC, must neither stall nor rush them), and waits
// on the monotonic clock. The daemon builds one Clock and hands it, or its
// methods, to every component; tests hand them internal/fakeclock's.
package clock

import "time"

// Clock is the time.
type Clock interface {
	// Now is the wall clock.
	Now() time.Time
	// Mono is the time elapsed since an arbitrary origin on a clock that
	// never steps; only differences mean anything.
	Mono() time.Duration
	// After waits d on the monotonic clock, as time.After does.
	After(d time.Duration) <-chan time.Time
}

// System is the machine's clock: time.Now, whose readings carry the
// monotonic clock, and time.After.
func System() Clock { return system{origin: time.Now()} }

type system struct{ origin time.Time }

func (c system) Now() time.Time                         { return time.Now() }
func (c system) Mono() time.Duration                    { return time.Since(c.origin) }
func (c system) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Funcs is a Clock made of functions: the daemon's wall clock (which tests
// of the whole daemon may set) and its monotonic clock (CLOCK_BOOTTIME).
// A nil After is time.After.
type Funcs struct {
	NowFunc   func() time.Time
	MonoFunc  func() time.Duration
	AfterFunc func(time.Duration) <-chan time.Time
}

func (f Funcs) Now() time.Time      { return f.NowFunc() }
func (f Funcs) Mono() time.Duration { return f.MonoFunc() }
func (f Funcs) After(d time.Duration) <-chan time.Time {
	if f.AfterFunc == nil {
		return time.After(d)
	}
	return f.AfterFunc(d)
}
