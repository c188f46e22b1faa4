package uploader

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/watch"
)

// Window is one window of a weekly schedule: on the days it starts on,
// from From to To (minutes since midnight, wall time in the schedule's
// zone; a To not after From ends the next day), the cap is Mbps (0
// pauses).
type Window struct {
	Days     [7]bool // by time.Weekday
	From, To int
	Mbps     float64
}

// Schedule is the cap over the week: the first window that holds a moment
// gives its cap, Default (Unlimited for none) holds outside them. A window
// is wall time in Loc: on the day a clock goes forward or back it starts
// and ends at the wall times it names (a start inside the skipped hour
// begins at the change).
type Schedule struct {
	Windows []Window
	Default float64
	Loc     *time.Location
}

// ScheduleFrom reads the config's cap and schedule (validated).
func ScheduleFrom(s config.S3Config) Schedule {
	sch := Schedule{Default: Unlimited, Loc: s.Location()}
	if s.MaxUploadMbps > 0 {
		sch.Default = s.MaxUploadMbps
	}
	for _, w := range s.UploadSchedule {
		var win Window
		win.From, _ = config.ParseClock(w.From)
		win.To, _ = config.ParseClock(w.To)
		win.Mbps = w.Mbps
		for i, d := range config.WeekDays {
			win.Days[i] = len(w.Days) == 0
			for _, wd := range w.Days {
				if strings.EqualFold(wd, d) {
					win.Days[i] = true
				}
			}
		}
		sch.Windows = append(sch.Windows, win)
	}
	return sch
}

// span is one occurrence of window i: [start, end).
type span struct {
	start, end time.Time
	i          int
}

// spans are the windows' occurrences that start on the local days from
// day-1 to day+days, in no order.
func (s Schedule) spans(t time.Time, days int) []span {
	loc := s.Loc
	if loc == nil {
		loc = time.Local
	}
	l := t.In(loc)
	var out []span
	for d := -1; d <= days; d++ {
		y, m, dd := l.Date()
		day := time.Date(y, m, dd+d, 12, 0, 0, 0, loc) // noon: never in a clock change
		for i, w := range s.Windows {
			if !w.Days[day.Weekday()] {
				continue
			}
			start := wallTime(day, 0, w.From, loc)
			endDay := 0
			if w.To <= w.From {
				endDay++
			}
			end := wallTime(day, endDay, w.To, loc)
			if end.After(start) {
				out = append(out, span{start: start, end: end, i: i})
			}
		}
	}
	return out
}

// wallTime is the moment of minutes past midnight, days after day, in
// loc; a wall time a clock change skips is the change itself (the first
// wall time after it that exists).
func wallTime(day time.Time, days, minutes int, loc *time.Location) time.Time {
	for k := range 24 * 60 {
		m := minutes + k
		t := time.Date(day.Year(), day.Month(), day.Day()+days, 0, m, 0, 0, loc)
		want := time.Date(day.Year(), day.Month(), day.Day()+days, 0, m, 0, 0, time.UTC)
		if t.Hour() == want.Hour() && t.Minute() == want.Minute() && t.Day() == want.Day() {
			return t
		}
	}
	return time.Date(day.Year(), day.Month(), day.Day()+days, 0, minutes, 0, 0, loc)
}

// At is the cap at t (Mbit/s; Unlimited, or 0 paused), the window that
// gives it (-1: none, Default holds), and the next moment it may change
// (zero: never).
func (s Schedule) At(t time.Time) (mbps float64, window int, next time.Time) {
	mbps, window = s.Default, -1
	spans := s.spans(t, 8)
	for _, sp := range spans {
		if !t.Before(sp.start) && t.Before(sp.end) && (window == -1 || sp.i < window) {
			mbps, window = s.Windows[sp.i].Mbps, sp.i
		}
	}
	for _, sp := range spans {
		for _, b := range []time.Time{sp.start, sp.end} {
			if b.After(t) && (next.IsZero() || b.Before(next)) {
				next = b
			}
		}
	}
	return mbps, window, next
}

// OpenShare is the share of the week from t on that the schedule does not
// pause: what an upload rate measured while uploads may run is worth over
// the week.
func (s Schedule) OpenShare(t time.Time) float64 {
	end := t.Add(7 * 24 * time.Hour)
	var open time.Duration
	for at := t; at.Before(end); {
		mbps, _, next := s.At(at)
		if next.IsZero() || next.After(end) {
			next = end
		}
		if mbps != 0 {
			open += next.Sub(at)
		}
		at = next
	}
	return float64(open) / float64(end.Sub(t))
}

// Cap sources, in LimitStatus.Source.
const (
	SourceConfig   = "config"   // s3Config.maxUploadMbps
	SourceSchedule = "schedule" // a window of s3Config.uploadSchedule
	SourceAPI      = "api"      // PUT /api/v1/uploader/limit
)

// LimitStatus is the cap in force, as the API shows it.
type LimitStatus struct {
	// MaxUploadMbps is the cap in Mbit/s; 0 with Paused false: none.
	MaxUploadMbps float64 `json:"maxUploadMbps"`
	// Paused: a window of the schedule pauses the uploads (mbps 0).
	Paused bool `json:"paused"`
	// Source says where the cap comes from; Window is the schedule's
	// window that gives it (its index), absent otherwise.
	Source string `json:"source"`
	Window *int   `json:"window,omitempty"`
	// Until is when the schedule changes the cap next (absent: never, or
	// the API's cap holds).
	Until time.Time `json:"until,omitzero"`
	// ConfigMaxUploadMbps is s3Config.maxUploadMbps (0: none).
	ConfigMaxUploadMbps float64 `json:"configMaxUploadMbps"`
	// Persisted is always false: a cap set through the API holds until the
	// daemon restarts or a reload changes the config's pacing; it is never
	// written over the config file.
	Persisted bool `json:"persisted"`
}

// Pacer sets the Limiter's rate from the schedule, on an injected clock,
// or from the cap the API set; Run follows the schedule's boundaries.
type Pacer struct {
	lim   *Limiter
	clock Clock
	log   zerolog.Logger
	wake  chan struct{}

	mu       sync.Mutex
	sch      Schedule
	cfgMbps  float64  // s3Config.maxUploadMbps, for the status
	override *float64 // the API's cap (Mbit/s, 0: none), nil: none set

	status *watch.Value[LimitStatus]
}

// NewPacer returns a Pacer of lim on clock; it applies the schedule at
// once.
func NewPacer(lim *Limiter, sch Schedule, cfgMbps float64, clock Clock, log zerolog.Logger) *Pacer {
	p := &Pacer{lim: lim, clock: clock, log: log.With().Str("component", "uploader").Logger(), wake: make(chan struct{}, 1),
		sch: sch, cfgMbps: cfgMbps, status: watch.New(LimitStatus{})}
	p.apply()
	return p
}

// Reconfigure applies a new schedule; a cap the API set gives way to it
// when the config's pacing changed.
func (p *Pacer) Reconfigure(sch Schedule, cfgMbps float64) {
	p.mu.Lock()
	changed := cfgMbps != p.cfgMbps || !sameSchedule(sch, p.sch)
	p.sch, p.cfgMbps = sch, cfgMbps
	if changed {
		p.override = nil
	}
	p.mu.Unlock()
	p.poke()
}

func sameSchedule(a, b Schedule) bool {
	if a.Default != b.Default || len(a.Windows) != len(b.Windows) || a.Loc.String() != b.Loc.String() {
		return false
	}
	for i := range a.Windows {
		if a.Windows[i] != b.Windows[i] {
			return false
		}
	}
	return true
}

// SetOverride sets the cap for this run (Mbit/s, 0: none), over the config
// and the schedule; nil returns to them.
func (p *Pacer) SetOverride(mbps *float64) {
	p.mu.Lock()
	if mbps == nil {
		p.override = nil
	} else {
		v := *mbps
		p.override = &v
	}
	p.mu.Unlock()
	p.poke()
	p.log.Info().Str("cap", p.Status().describe()).Msg("upload cap set through the API, for this run only (not written to the config)")
}

func (s LimitStatus) describe() string {
	switch {
	case s.Paused:
		return "paused"
	case s.MaxUploadMbps == 0:
		return "none"
	}
	return formatMbps(s.MaxUploadMbps * 1e6 / 8)
}

func (p *Pacer) poke() {
	p.apply()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Status is the cap in force.
func (p *Pacer) Status() LimitStatus { return p.status.Get() }

// OpenShare is the share of the coming week the uploads may run: the
// schedule's (Schedule.OpenShare), 1 while the API's cap holds (it does
// not pause, or pauses nothing it knows the end of).
func (p *Pacer) OpenShare() float64 {
	p.mu.Lock()
	sch, override := p.sch, p.override
	p.mu.Unlock()
	if override != nil {
		return 1
	}
	return sch.OpenShare(p.clock.Now())
}

// WaitFor returns once cond holds for the cap in force, or ctx ends.
func (p *Pacer) WaitFor(ctx context.Context, cond func(LimitStatus) bool) error {
	return p.status.WaitFor(ctx, cond)
}

// apply sets the limiter from the schedule at the clock's now, and
// returns when to look again.
func (p *Pacer) apply() time.Time {
	p.mu.Lock()
	sch, cfgMbps, override := p.sch, p.cfgMbps, p.override
	p.mu.Unlock()
	st := LimitStatus{ConfigMaxUploadMbps: cfgMbps}
	mbps, window, next := sch.At(p.clock.Now())
	switch {
	case override != nil:
		mbps, st.Source, next = *override, SourceAPI, time.Time{}
		if mbps == 0 {
			mbps = Unlimited
		}
	case window >= 0:
		st.Source, st.Window = SourceSchedule, &window
	default:
		st.Source = SourceConfig
	}
	st.Until = next
	if math.IsInf(mbps, 1) {
		st.MaxUploadMbps = 0
	} else {
		st.MaxUploadMbps, st.Paused = mbps, mbps == 0
	}
	before := p.lim.Mbps()
	p.lim.SetMbps(mbps)
	if before != mbps {
		p.log.Info().Str("cap", st.describe()).Str("source", st.Source).Msg("upload cap")
	}
	p.status.Update(func(s *LimitStatus) { *s = st })
	return next
}

// Run follows the schedule until ctx ends: at each boundary, and at least
// every minute (a wall clock stepped, a zone's change), the cap is set
// again.
func (p *Pacer) Run(ctx context.Context) error {
	for {
		next := p.apply()
		wait := time.Minute
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(p.clock.Now()), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-p.clock.After(wait):
		}
	}
}
