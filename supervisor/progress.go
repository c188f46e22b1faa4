package supervisor

import (
	"strconv"
	"strings"
	"time"
)

// ProgressPeriod is how often ffmpeg reports its progress, for a stall
// timeout and a segment length: a third of the timeout, at most half a
// segment and at most 5 s. The watchdog then sees a block that advances at
// least every period plus a frame interval (config holds a frame to at most
// a third of the timeout): two thirds of the timeout at worst. cctvd reads
// a fifth of the blocks it read at one a second (at 64 cameras, reading
// them was a fifth of its CPU). A run's first segment is named once the
// stream's epoch has settled, at the second block (see
// staging.Meta.EpochSettled): half a segment bounds that wait.
func ProgressPeriod(stallTimeout, segment time.Duration) time.Duration {
	return max(10*time.Millisecond, min(5*time.Second, stallTimeout/3, segment/2).Round(10*time.Millisecond))
}

// statsPeriod is ffmpeg's -stats_period for a period (0: one second).
func statsPeriod(d time.Duration) string {
	if d <= 0 {
		return "1"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// Progress is one block of ffmpeg's -progress output.
type Progress struct {
	// Frame is the number of frames written so far.
	Frame int64 `json:"frame"`
	// FPS is ffmpeg's average output frame rate.
	FPS float64 `json:"fps"`
	// BitrateKbps is the output bit rate in kbit/s, 0 when unknown.
	BitrateKbps float64 `json:"bitrateKbps"`
	// OutTime is the stream time written so far.
	OutTime time.Duration `json:"outTime"`
	// Speed is stream seconds per wall-clock second (1 is real time).
	Speed float64 `json:"speed"`
	// DupFrames and DropFrames are frames the fps filter duplicated or dropped.
	DupFrames  int64 `json:"dupFrames"`
	DropFrames int64 `json:"dropFrames"`
	// End is set on the last block, written as ffmpeg finishes.
	End bool `json:"-"`
}

// progressParser assembles key=value lines into blocks; a block ends with
// a "progress=continue" or "progress=end" line. Values ffmpeg reports as
// N/A keep their previous value.
type progressParser struct {
	cur Progress
}

// line feeds one line and returns a block when the line completes one.
func (p *progressParser) line(s string) (Progress, bool) {
	key, val, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return Progress{}, false
	}
	val = strings.TrimSpace(val)
	switch key {
	case "frame":
		if n, err := strconv.ParseInt(val, 10, 64); err == nil {
			p.cur.Frame = n
		}
	case "fps":
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			p.cur.FPS = f
		}
	case "bitrate":
		if f, err := strconv.ParseFloat(strings.TrimSuffix(val, "kbits/s"), 64); err == nil {
			p.cur.BitrateKbps = f
		}
	case "out_time_us":
		if n, err := strconv.ParseInt(val, 10, 64); err == nil && n >= 0 {
			p.cur.OutTime = time.Duration(n) * time.Microsecond
		}
	case "speed":
		if f, err := strconv.ParseFloat(strings.TrimSuffix(val, "x"), 64); err == nil {
			p.cur.Speed = f
		}
	case "dup_frames":
		if n, err := strconv.ParseInt(val, 10, 64); err == nil {
			p.cur.DupFrames = n
		}
	case "drop_frames":
		if n, err := strconv.ParseInt(val, 10, 64); err == nil {
			p.cur.DropFrames = n
		}
	case "progress":
		p.cur.End = val == "end"
		return p.cur, true
	}
	return Progress{}, false
}

// epochEstimator finds when stream time 0 was, from progress blocks
// stamped on arrival: a block that reports out_time T arriving at A says the
// stream started at A - T, or earlier if the block was delayed. The
// smallest recent value is the best estimate; the window lets it follow a
// camera whose clock runs slower than ours.
//
// It works on the monotonic clock, which never steps: the wall-clock epoch
// is derived from it at each block (wallEpoch), so when the wall clock
// steps, the epoch, and the names of the segments still to close, follow
// the new time at the next block instead of keeping the old clock for the
// window's length or mixing both.
type epochEstimator struct {
	window  time.Duration
	samples []epochSample
}

type epochSample struct {
	at    time.Duration // arrival, monotonic
	epoch time.Duration // arrival - out_time, monotonic
}

// add records a block that reported outTime and arrived at mono, and
// returns the current estimate of stream time 0 on the monotonic clock.
func (e *epochEstimator) add(mono, outTime time.Duration) time.Duration {
	cut := 0
	for cut < len(e.samples) && mono-e.samples[cut].at > e.window {
		cut++
	}
	e.samples = append(e.samples[cut:], epochSample{at: mono, epoch: mono - outTime})
	best := e.samples[0].epoch
	for _, s := range e.samples[1:] {
		best = min(best, s.epoch)
	}
	return best
}

// wallEpoch converts a monotonic epoch to the wall clock, through a pair of
// readings of both clocks taken together. The result carries no monotonic
// reading, so comparing two epochs compares wall-clock times.
func wallEpoch(wall time.Time, mono, epoch time.Duration) time.Time {
	return wall.Round(0).Add(epoch - mono)
}

// watchdog tells when progress has stopped advancing for too long. Its
// times are on the monotonic clock: a step of the wall clock is no stall.
type watchdog struct {
	timeout     time.Duration
	frame       int64
	outTime     time.Duration
	lastAdvance time.Duration
}

func newWatchdog(timeout, mono time.Duration) *watchdog {
	return &watchdog{timeout: timeout, frame: -1, outTime: -1, lastAdvance: mono}
}

// observe records a block and reports whether it advanced frame or out_time.
func (w *watchdog) observe(p Progress, mono time.Duration) bool {
	if p.Frame > w.frame || p.OutTime > w.outTime {
		advanced := w.frame >= 0 || p.Frame > 0 || p.OutTime > 0
		w.frame, w.outTime = max(w.frame, p.Frame), max(w.outTime, p.OutTime)
		if advanced {
			w.lastAdvance = mono
		}
		return advanced
	}
	return false
}

// deadline is when the stream counts as stalled if nothing advances.
func (w *watchdog) deadline() time.Duration { return w.lastAdvance + w.timeout }

// expired reports whether the deadline has passed.
func (w *watchdog) expired(mono time.Duration) bool { return mono >= w.deadline() }
