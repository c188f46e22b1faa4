package activity

import (
	"math"
	"time"
)

// Interval is a stretch of activity. In a Summary its times are offsets
// from the segment's start; in the tracker, stream times.
type Interval struct {
	Start, End time.Duration
	// Peak is the time of its strongest frame, Level that frame's
	// changed share (0-1).
	Peak  time.Duration
	Level float64
}

// Summary is the activity of one segment.
type Summary struct {
	// Score is the share (0-1) of the segment's time inside intervals.
	Score float64
	// Heatmap holds, for each cell of a 16x16 grid over the picture (row
	// by row from the top left), the share of the segment's frames with
	// motion in it, 0 to 255 (rounded up: any motion is at least 1).
	Heatmap [Cells]uint8
	// Intervals are offsets from the segment's start, in order.
	Intervals []Interval
	// Frames is how many frames were analysed.
	Frames int
}

// Active says whether the segment had any activity.
func (s Summary) Active() bool { return len(s.Intervals) > 0 }

// DefaultHold is how long a still spell must last to end an interval:
// motion that resumes sooner continues it. It is at least two sampling
// periods (two keyframes when copying): an object that blends into the
// picture at one frame (a white shirt before a white wall) stays one
// interval.
const DefaultHold = 2 * time.Second

// edgeTolerance absorbs the rounding between the frames' times
// (milliseconds) and the segment list's (microseconds): a frame this close
// before a segment's end is the next segment's first.
const edgeTolerance = 5 * time.Millisecond

// maxRecent bounds the frames a run keeps for the segment being recorded;
// older ones are folded into counts (a segment of more than about 34
// minutes at 1 frame a second).
const maxRecent = 2048

// Tracker follows one camera: the detector over its frames, and for each
// ffmpeg run the intervals and the frames of the segments not summarised
// yet. It keeps the run before the current one too, whose last segment may
// close after the next run began. It is not safe for concurrent use.
type Tracker struct {
	det       *Detector
	hold      time.Duration
	cur, prev *runState
}

// NewTracker returns a tracker with detector params p and hold (0: the
// defaults).
func NewTracker(p Params, hold time.Duration) *Tracker {
	if hold <= 0 {
		hold = DefaultHold
	}
	return &Tracker{det: NewDetector(p), hold: hold}
}

type runState struct {
	id      string
	ended   bool
	last    time.Duration // the newest frame's time
	hasLast bool
	period  time.Duration // the time between frames, smoothed
	open    *openInterval
	closed  []Interval // stream times, not yet summarised past
	recent  []rec
	folded  counts // frames that fell out of recent, not summarised yet
}

type openInterval struct {
	Interval
	lastMotion time.Duration
	pending    bool // a still frame came after lastMotion; End holds its midpoint
}

type rec struct {
	pts    time.Duration
	share  float32
	motion bool
	active [Cells / 64]uint64
}

type counts struct {
	frames int
	cells  [Cells]int32
}

func (c *counts) add(r rec) {
	c.frames++
	if r.motion {
		for i := range Cells {
			if r.active[i/64]&(1<<(i%64)) != 0 {
				c.cells[i]++
			}
		}
	}
}

// Change reports an interval's beginning or end, as frames show it.
type Change struct {
	Run string
	// Started: an interval began at At (stream time); otherwise one ended
	// at At (the still frame that ended it is Hold later).
	Started bool
	At      time.Duration
	Level   float64
}

// Add analyses a frame of run and returns what it found, and a change of
// the interval state if there was one.
func (t *Tracker) Add(run string, f Frame) (Sample, *Change) {
	rs := t.run(run)
	s := t.det.Add(f)
	r := rec{pts: s.PTS, share: float32(s.Share), motion: s.Motion, active: s.Active}
	if len(rs.recent) >= maxRecent {
		rs.folded.add(rs.recent[0])
		rs.recent = append(rs.recent[:0], rs.recent[1:]...)
	}
	rs.recent = append(rs.recent, r)
	var ch *Change
	switch {
	case s.Motion && rs.open == nil:
		start := s.PTS
		if rs.hasLast && rs.last < s.PTS {
			start = rs.last + (s.PTS-rs.last)/2 // between the still frame and this one
		}
		rs.open = &openInterval{Interval: Interval{Start: start, Peak: s.PTS, Level: s.Share}, lastMotion: s.PTS}
		ch = &Change{Run: run, Started: true, At: start, Level: s.Share}
	case s.Motion:
		rs.open.lastMotion, rs.open.pending = s.PTS, false
		if s.Share > rs.open.Level {
			rs.open.Peak, rs.open.Level = s.PTS, s.Share
		}
	case rs.open != nil:
		if !rs.open.pending {
			rs.open.pending = true
			rs.open.End = rs.open.lastMotion + (s.PTS-rs.open.lastMotion)/2
		}
		if s.PTS-rs.open.lastMotion >= max(t.hold, 2*rs.period) {
			rs.closed = append(rs.closed, rs.open.Interval)
			ch = &Change{Run: run, At: rs.open.End, Level: rs.open.Level}
			rs.open = nil
		}
	}
	if rs.hasLast && s.PTS > rs.last {
		dt := min(s.PTS-rs.last, time.Minute)
		if rs.period == 0 {
			rs.period = dt
		} else {
			rs.period += (dt - rs.period) / 4
		}
	}
	rs.last, rs.hasLast = s.PTS, true
	return s, ch
}

// run returns the state of run, starting it if it is new (which ends the
// current one).
func (t *Tracker) run(id string) *runState {
	if t.cur != nil && t.cur.id == id {
		return t.cur
	}
	if t.cur != nil {
		t.cur.end()
	}
	t.prev, t.cur = t.cur, &runState{id: id}
	return t.cur
}

// EndRun says run will send no more frames: an interval still open ends at
// its last motion. It returns the change, if one was open.
func (t *Tracker) EndRun(run string) *Change {
	for _, rs := range []*runState{t.cur, t.prev} {
		if rs != nil && rs.id == run && !rs.ended {
			if rs.open == nil {
				rs.end()
				return nil
			}
			open := *rs.open
			rs.end()
			if !open.pending {
				open.End = open.lastMotion
			}
			return &Change{Run: run, At: open.End, Level: open.Level}
		}
	}
	return nil
}

func (rs *runState) end() {
	if rs.open != nil {
		if !rs.open.pending {
			rs.open.End = rs.open.lastMotion
		}
		if rs.open.End > rs.open.Start {
			rs.closed = append(rs.closed, rs.open.Interval)
		}
		rs.open = nil
	}
	rs.ended = true
}

// Knowledge says how much a Summary knows.
type Knowledge int

const (
	// Unknown: the tracker saw no frame of the segment's run (activity
	// was off, or the run is from before a restart).
	Unknown Knowledge = iota
	// Provisional: frames of the segment may still come; ask again.
	Provisional
	// Final: every frame of the segment has been seen.
	Final
)

// Summarize returns the activity of run's segment [from, to) (stream
// times), and how much it knows. With consume, a Final summary forgets
// the frames and intervals before to; a segment is summarised once, in
// order.
func (t *Tracker) Summarize(run string, from, to time.Duration, consume bool) (Summary, Knowledge) {
	return t.summarize(run, from, to, consume, false)
}

// summarize is Summarize; force takes what came as final.
func (t *Tracker) summarize(run string, from, to time.Duration, consume, force bool) (Summary, Knowledge) {
	var rs *runState
	for _, r := range []*runState{t.cur, t.prev} {
		if r != nil && r.id == run {
			rs = r
		}
	}
	if rs == nil || to <= from {
		return Summary{}, Unknown
	}
	k := Provisional
	if force || rs.ended || rs != t.cur || (rs.hasLast && rs.last >= to-edgeTolerance) {
		k = Final
	}
	// An interval in a still spell shorter than the hold at the segment's
	// end may yet go on: its end here is known only once the spell ends or
	// the motion resumes (until then it is taken as going on).
	waiting := rs.open != nil && rs.open.pending && rs.open.End < to && !force
	if waiting {
		k = Provisional
	}
	c := rs.folded
	for _, r := range rs.recent {
		if r.pts >= from-edgeTolerance && r.pts < to-edgeTolerance {
			c.add(r)
		}
	}
	if c.frames == 0 && k == Final {
		return Summary{}, Unknown // no frame of it came: not analysed
	}
	sum := Summary{Frames: c.frames}
	for i, n := range c.cells {
		if n > 0 && c.frames > 0 {
			sum.Heatmap[i] = uint8(min(255, math.Ceil(255*float64(n)/float64(c.frames))))
		}
	}
	ivls := rs.closed
	if rs.open != nil {
		o := rs.open.Interval
		if !rs.open.pending || waiting {
			o.End = to // motion as of the newest frame (or a short still spell): it goes on
		}
		ivls = append(ivls[:len(ivls):len(ivls)], o)
	}
	var covered time.Duration
	for _, iv := range ivls {
		s, e := max(iv.Start, from), min(iv.End, to)
		if e <= s {
			continue
		}
		part := Interval{Start: s - from, End: e - from, Peak: min(max(iv.Peak, s), e) - from, Level: iv.Level}
		if iv.Peak < s || iv.Peak > e { // the peak is in another segment: this part's own
			part.Level = 0
			for _, r := range rs.recent {
				if r.motion && r.pts >= s && r.pts <= e && float64(r.share) > part.Level {
					part.Peak, part.Level = r.pts-from, float64(r.share)
				}
			}
		}
		sum.Intervals = append(sum.Intervals, part)
		covered += e - s
	}
	sum.Score = min(1, float64(covered)/float64(to-from))
	if consume && k == Final {
		rs.folded = counts{}
		keep := rs.recent[:0]
		for _, r := range rs.recent {
			if r.pts >= to-edgeTolerance {
				keep = append(keep, r)
			}
		}
		rs.recent = keep
		closed := rs.closed[:0]
		for _, iv := range rs.closed {
			if iv.End > to {
				closed = append(closed, iv)
			}
		}
		rs.closed = closed
	}
	return sum, k
}
