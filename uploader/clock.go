package uploader

import "github.com/cctvd/cctvd/internal/clock"

// Clock is the uploader's time. Now is the wall clock, for what people read
// (the catalog's dates, the API); Mono is the monotonic clock, which alone
// orders retries and pauses, so a wall clock stepped back (a box that booted
// without an RTC, an operator running `date`) or forward neither stalls nor
// rushes them.
type Clock = clock.Clock
