package alerts

import (
	"fmt"
	"reflect"
	"sort"
	"time"
)

// Tracker turns observations and facts into events: the pure logic of
// debounce, clearing, cooldown and gathering, on an injected clock (mono,
// the monotonic clock, orders every wait; wall dates the events). It is
// used by one goroutine.
type Tracker struct {
	cfg    Config
	ids    func() string
	tracks map[key]*track
	facts  map[key]*gather
}

type key struct {
	typ    Type
	camera string
}

// track is one condition of one camera (or of the box).
type track struct {
	holding bool
	since   time.Duration // mono: when it began to hold
	raised  *OpenCondition
	// raisedMono is when it was raised, on the monotonic clock; restored
	// conditions (raised before this run) have none.
	raisedMono time.Duration
	restored   bool
	// clearedMono is when it last cleared (for the cooldown); cleared says
	// there was such a time.
	cleared     bool
	clearedMono time.Duration
}

// gather is the facts of one camera and type within a cooldown.
type gather struct {
	sent     bool
	lastSent time.Duration // mono
	n        int
	from, to time.Time
	files    []string
	step     time.Duration
}

// OpenCondition is a condition raised and not yet cleared.
type OpenCondition struct {
	// ID is the event that raised it.
	ID       string    `json:"id"`
	Type     Type      `json:"type"`
	Severity Severity  `json:"severity"`
	Camera   string    `json:"camera,omitempty"`
	Since    time.Time `json:"since"`
	Message  string    `json:"message"`
}

// NewTracker returns a tracker whose events take their ids from ids.
func NewTracker(cfg Config, ids func() string) *Tracker {
	cfg.setDefaults()
	return &Tracker{cfg: cfg, ids: ids, tracks: map[key]*track{}, facts: map[key]*gather{}}
}

// Restore marks conditions raised before this run (from the outbox) as
// raised: they are not raised again while they hold, and clear with an
// event when they no longer do. A key this run has raised already keeps
// its own.
func (t *Tracker) Restore(open []OpenCondition) {
	for _, oc := range open {
		k := key{oc.Type, oc.Camera}
		tr := t.tracks[k]
		if tr == nil {
			tr = &track{}
			t.tracks[k] = tr
		}
		if tr.raised == nil {
			oc := oc
			tr.raised, tr.restored = &oc, true
		}
	}
}

// Open lists the raised conditions, oldest first.
func (t *Tracker) Open() []OpenCondition {
	var out []OpenCondition
	for _, tr := range t.tracks {
		if tr.raised != nil {
			out = append(out, *tr.raised)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Raised says whether a condition is raised for camera ("" for the box).
func (t *Tracker) Raised(typ Type, camera string) bool {
	tr := t.tracks[key{typ, camera}]
	return tr != nil && tr.raised != nil
}

// Observe checks every condition against o and returns the events it
// raises and clears.
func (t *Tracker) Observe(mono time.Duration, wall time.Time, o Observation) []Event {
	var out []Event
	for _, c := range conditions {
		findings := c.check(o, t.cfg, wall, func(camera string) bool { return t.Raised(c.typ, camera) })
		seen := map[string]bool{}
		for _, f := range findings {
			seen[f.Camera] = true
			if ev, ok := t.step(c, f, mono, wall); ok {
				out = append(out, ev)
			}
		}
		// A camera no longer configured: its conditions are forgotten
		// (whoever removed it knows).
		for k := range t.tracks {
			if k.typ == c.typ && !seen[k.camera] && k.camera != "" {
				delete(t.tracks, k)
			}
		}
	}
	return out
}

// step applies one finding to its track.
func (t *Tracker) step(c condition, f Finding, mono time.Duration, wall time.Time) (Event, bool) {
	k := key{c.typ, f.Camera}
	tr := t.tracks[k]
	if tr == nil {
		tr = &track{}
		t.tracks[k] = tr
	}
	switch f.Verdict {
	case Unknown:
		return Event{}, false
	case Paused:
		tr.holding = false
		return Event{}, false
	case Clear:
		tr.holding = false
		if tr.raised == nil {
			return Event{}, false
		}
		open := wall.Sub(tr.raised.Since)
		if !tr.restored {
			open = mono - tr.raisedMono
		}
		ev := Event{ID: t.ids(), Type: types[c.typ].clearedAs, State: Cleared, Severity: Info, Camera: f.Camera, Time: wall,
			Message: f.Message, Clears: tr.raised.ID}
		d := f.Details
		d.OpenSeconds = seconds(open)
		ev.Details = &d
		tr.raised, tr.restored = nil, false
		tr.cleared, tr.clearedMono = true, mono
		return ev, true
	}
	// Holds.
	if tr.raised != nil {
		return Event{}, false
	}
	if !tr.holding {
		tr.holding, tr.since = true, mono
	}
	if mono-tr.since < c.after(t.cfg) {
		return Event{}, false
	}
	if tr.cleared && mono-tr.clearedMono < t.cfg.Cooldown {
		return Event{}, false // flapping: not again before the cooldown ends
	}
	ev := Event{ID: t.ids(), Type: c.typ, State: Raised, Severity: types[c.typ].severity, Camera: f.Camera, Time: wall, Message: f.Message}
	if !reflect.DeepEqual(f.Details, Details{}) {
		d := f.Details
		ev.Details = &d
	}
	tr.raised = &OpenCondition{ID: ev.ID, Type: c.typ, Severity: ev.Severity, Camera: f.Camera, Since: wall, Message: f.Message}
	tr.raisedMono = mono
	return ev, true
}

// Fact is something that happened at an instant: a deletion before
// upload, a quarantined file, a clock step.
type Fact struct {
	// Type is DeletedBeforeUpload, QuarantineGrowing, ClockStep or
	// Activity (From and To: when the interval began).
	Type   Type
	Camera string
	// From and To are the footage the file held; File its name.
	From, To time.Time
	File     string
	// Detail says why (the deletion's cause, the damage).
	Detail string
	// Step is a clock step's size (negative: back).
	Step time.Duration
}

// Fact returns the event of a fact: one at once, unless one of the same
// camera and type went out within the cooldown; then it is gathered into
// the next, which Tick sends when the cooldown ends.
func (t *Tracker) Fact(mono time.Duration, wall time.Time, f Fact) []Event {
	if _, ok := types[f.Type]; !ok || f.Type == Test {
		return nil
	}
	k := key{f.Type, f.Camera}
	g := t.facts[k]
	if g == nil {
		g = &gather{}
		t.facts[k] = g
	}
	g.n++
	if g.from.IsZero() || (!f.From.IsZero() && f.From.Before(g.from)) {
		g.from = f.From
	}
	if f.To.After(g.to) {
		g.to = f.To
	}
	if f.File != "" && len(g.files) < MaxFiles {
		g.files = append(g.files, f.File)
	}
	g.step += f.Step
	if g.sent && mono-g.lastSent < t.cfg.Cooldown {
		return nil
	}
	return []Event{t.flush(k, g, mono, wall, f.Detail)}
}

// Tick sends the facts gathered whose cooldown has ended.
func (t *Tracker) Tick(mono time.Duration, wall time.Time) []Event {
	var keys []key
	for k, g := range t.facts {
		if g.n > 0 && mono-g.lastSent >= t.cfg.Cooldown {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].typ != keys[j].typ {
			return keys[i].typ < keys[j].typ
		}
		return keys[i].camera < keys[j].camera
	})
	var out []Event
	for _, k := range keys {
		out = append(out, t.flush(k, t.facts[k], mono, wall, ""))
	}
	return out
}

// flush makes the event of what g gathered and starts the cooldown.
func (t *Tracker) flush(k key, g *gather, mono time.Duration, wall time.Time, detail string) Event {
	more := g.sent // earlier ones of this camera and type went out
	d := Details{Count: g.n, From: timePtr(g.from), To: timePtr(g.to), Files: g.files}
	ev := Event{ID: t.ids(), Type: k.typ, State: Once, Severity: types[k.typ].severity, Camera: k.camera, Time: wall}
	span := ""
	if !g.from.IsZero() && !g.to.IsZero() {
		span = fmt.Sprintf(" (footage from %s to %s)", g.from.UTC().Format(timeLayout), g.to.UTC().Format(timeLayout))
	}
	switch k.typ {
	case DeletedBeforeUpload:
		if g.n == 1 && !more {
			ev.Message = fmt.Sprintf("Retention deleted footage of camera %s that S3 did not have: %s%s", k.camera, nameOr(g.files, "a segment"), span)
			if detail != "" {
				ev.Message += ", to keep " + detail
			}
			ev.Message += "."
		} else {
			ev.Message = fmt.Sprintf("Retention deleted %s of camera %s that S3 did not have%s.", plural(g.n, "more segment", "more segments", more), k.camera, span)
		}
	case QuarantineGrowing:
		if g.n == 1 && !more {
			ev.Message = fmt.Sprintf("A damaged file of camera %s went to quarantine instead of S3: %s", k.camera, nameOr(g.files, "a segment"))
			if detail != "" {
				ev.Message += " (" + detail + ")"
			}
			ev.Message += "."
		} else {
			ev.Message = fmt.Sprintf("%s of camera %s went to quarantine instead of S3%s.", plural(g.n, "more damaged file", "more damaged files", more), k.camera, span)
		}
	case Activity:
		at := g.from.UTC().Format(timeLayout)
		if detail != "" {
			detail = " (" + detail + ")"
		}
		switch {
		case g.n == 1 && !more:
			ev.Message = fmt.Sprintf("Activity on camera %s at %s%s.", k.camera, at, detail)
		case g.n == 1:
			ev.Message = fmt.Sprintf("Activity again on camera %s at %s%s.", k.camera, at, detail)
		default:
			ev.Message = fmt.Sprintf("%s on camera %s, from %s to %s.", plural(g.n, "more activity interval", "more activity intervals", more),
				k.camera, at, g.to.UTC().Format(timeLayout))
		}
	case ClockStep:
		d.From, d.To = nil, nil
		d.StepSeconds = seconds(g.step)
		d.Direction = "forward"
		if g.step < 0 {
			d.Direction = "back"
		}
		if g.n == 1 {
			ev.Message = fmt.Sprintf("The wall clock stepped %s by %s: footage is named on the new clock.", d.Direction, (g.step.Abs()).Round(time.Millisecond))
		} else {
			ev.Message = fmt.Sprintf("The wall clock stepped %d times, %s by %s in all: footage is named on the new clock.", g.n, d.Direction, (g.step.Abs()).Round(time.Millisecond))
		}
	}
	ev.Details = &d
	g.sent, g.lastSent = true, mono
	g.n, g.from, g.to, g.files, g.step = 0, time.Time{}, time.Time{}, nil, 0
	return ev
}

const timeLayout = "2006-01-02 15:04:05 UTC"

func nameOr(files []string, other string) string {
	if len(files) > 0 {
		return files[0]
	}
	return other
}

// plural is "n word" with the plural form; without more, "more " is cut.
func plural(n int, one, many string, more bool) string {
	w := many
	if n == 1 {
		w = one
	}
	if !more {
		w = trimPrefix(w, "more ")
	}
	return fmt.Sprintf("%d %s", n, w)
}

func trimPrefix(s, p string) string {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
