package uploader

import "time"

// Clock is the uploader's time. Now is the wall clock, for what people read
// (the catalog's dates, the API); Mono is the monotonic clock, which alone
// orders retries and pauses, so a wall clock stepped back (a box that booted
// without an RTC, an operator running `date`) or forward neither stalls nor
// rushes them.
type Clock interface {
	Now() time.Time
	// Mono is the time elapsed since an arbitrary origin; only differences
	// mean anything.
	Mono() time.Duration
	After(d time.Duration) <-chan time.Time
}

// systemClock is the machine's clock: time.Since reads the monotonic clock.
type systemClock struct{ origin time.Time }

func (c systemClock) Now() time.Time                         { return time.Now() }
func (c systemClock) Mono() time.Duration                    { return time.Since(c.origin) }
func (c systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
