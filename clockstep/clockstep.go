// Package clockstep notices steps of the wall clock: an operator's `date`,
// an NTP client that steps instead of slewing, a box without a real-time
// clock that boots at an old time and is corrected once the network is up.
//
// Segment names are wall-clock times, so a step moves them: forward, it
// leaves a hole in the timeline that holds no missing footage; back, it
// makes new names that an hour ago were already used. The Detector compares,
// every Interval, how far the wall clock moved with how much time passed on
// a clock that never steps (CLOCK_BOOTTIME: monotonic, and counting a
// suspend too, so a resumed box is not a step); a difference beyond
// Threshold is a step. Slewing (at most 0.05 % on Linux) never reaches it.
package clockstep

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Step is one step of the wall clock.
type Step struct {
	// At is the wall-clock time (the new clock's) when the step was seen.
	At time.Time
	// Size is how far the wall clock moved beyond the time that passed:
	// positive forward, negative back.
	Size time.Duration
}

// From is the old clock's time at the step: At - Size.
func (s Step) From() time.Time { return s.At.Add(-s.Size) }

// Direction is "forward" or "back".
func (s Step) Direction() string {
	if s.Size < 0 {
		return "back"
	}
	return "forward"
}

// Defaults.
const (
	DefaultInterval  = time.Second
	DefaultThreshold = 2 * time.Second
)

// Config is the detector's configuration.
type Config struct {
	// Interval between two looks at the clocks. Default 1s.
	Interval time.Duration
	// Threshold: a larger difference between the wall clock's progress and
	// the time that passed is a step. Default 2s.
	Threshold time.Duration
}

// Deps are the detector's collaborators.
type Deps struct {
	Log zerolog.Logger
	// Now is the wall clock; time.Now by default.
	Now func() time.Time
	// Mono is a clock that never steps; CLOCK_BOOTTIME by default.
	Mono func() time.Duration
	// After waits on a clock that never steps; time.After by default.
	After func(time.Duration) <-chan time.Time
	// OnStep, if set, hears of every step. It must not block for long.
	OnStep func(Step)
}

// Detector watches the wall clock for steps.
type Detector struct {
	cfg  Config
	deps Deps
	log  zerolog.Logger
}

// New returns a Detector.
func New(cfg Config, deps Deps) *Detector {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultThreshold
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Mono == nil {
		deps.Mono = BootTime
	}
	if deps.After == nil {
		deps.After = time.After
	}
	return &Detector{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "clock").Logger()}
}

// Run looks at the clocks every Interval until ctx ends.
func (d *Detector) Run(ctx context.Context) error {
	prevWall, prevMono := d.deps.Now().Round(0), d.deps.Mono()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.deps.After(d.cfg.Interval):
		}
		wall, mono := d.deps.Now().Round(0), d.deps.Mono()
		if step, ok := Detect(prevWall, prevMono, wall, mono, d.cfg.Threshold); ok {
			d.log.Warn().Str("direction", step.Direction()).Dur("step", step.Size).Time("from", step.From()).Time("to", step.At).
				Msg("the wall clock stepped: segment names follow the new time")
			if d.deps.OnStep != nil {
				d.deps.OnStep(step)
			}
		}
		prevWall, prevMono = wall, mono
	}
}

// Detect compares two readings of the wall clock and of a clock that never
// steps: the wall clock stepped when it moved more than threshold further
// (or less far) than the time that passed.
func Detect(prevWall time.Time, prevMono time.Duration, wall time.Time, mono, threshold time.Duration) (Step, bool) {
	size := wall.Round(0).Sub(prevWall.Round(0)) - (mono - prevMono)
	if size.Abs() <= threshold {
		return Step{}, false
	}
	return Step{At: wall, Size: size}, true
}

var processStart = time.Now()

// BootTime reads CLOCK_BOOTTIME: time since boot, suspend included, never
// stepped.
func BootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Since(processStart) // Go's monotonic clock; cannot happen on Linux
	}
	return time.Duration(ts.Nano())
}
