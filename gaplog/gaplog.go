// Package gaplog keeps the gap log: every interval in which a camera that
// should be recording has no footage, with a start, an end and a cause.
//
// A gap opens when a camera's ffmpeg exits, at the end of its last footage,
// with the exit's cause (stall, camera unreachable or refusing, auth
// failure, ffmpeg exit, operator stop, daemon shutdown); it closes at the
// start of the next run's first segment. The last segments of the ended run
// arrive after its exit and only move the gap's start. A daemon that was killed is found
// at start-up: a daemon-down gap from the last footage of each camera. A
// hole between segments with no event to explain it is logged as
// "unexplained", and a segment retention deletes before S3 has it is a gap
// of its own (cause retention): the footage is gone. So is a segment whose
// file turned out damaged (empty, truncated, undecodable) before S3 had it
// (cause corrupt): the uploader quarantines it instead of uploading it.
//
// A step of the wall clock is an entry of its own (cause clock-step): a step
// forward leaves a hole in the names' timeline with no footage missing, a
// step back makes names repeat an interval. Segments of one run named on
// either side of a step are compared on the new clock (their run's epoch
// moved by the step), so a step is never an "unexplained" or a negative gap.
package gaplog

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/clockstep"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
)

// Causes of gaps.
const (
	CauseUnreachable   = "unreachable"
	CauseAuth          = "auth"
	CauseNotFound      = "not-found"
	CauseStall         = "stall"
	CauseFFmpegExit    = "ffmpeg-exit"
	CauseStartFailed   = "start-failed"
	CauseOperatorStop  = "operator-stop"
	CauseDaemonDown    = "daemon-down"
	CauseRetention     = "retention"
	CauseSalvageFailed = "salvage-failed"
	CauseCorrupt       = "corrupt"
	CauseReconfigured  = "reconfigured"
	CauseClockStep     = "clock-step"
	CauseUnexplained   = "unexplained"
	CauseStorage       = "storage-unavailable" // savePath's disk was missing
)

// Tolerance: holes this short between segments are not gaps (the
// wall-clock estimate of segment times jitters by a fraction of a second).
const Tolerance = time.Second

// Catalog is what the gap log needs of the catalog.
type Catalog interface {
	AddGap(ctx context.Context, g catalog.Gap) (int64, error)
	UpdateGap(ctx context.Context, g catalog.Gap) error
	DeleteGap(ctx context.Context, id int64) error
	OpenGaps(ctx context.Context) (map[string]catalog.Gap, error)
	Gaps(ctx context.Context, camera string, from, to time.Time) ([]catalog.Gap, error)
	Latest(ctx context.Context, camera string) (catalog.Record, error)
}

// Deps are the gap log's collaborators.
type Deps struct {
	Log     zerolog.Logger
	Catalog Catalog
	// OnClosed, if set, is called when a gap closes (for metrics).
	OnClosed func(camera, cause string, d time.Duration)
	Now      func() time.Time
}

// Log is the gap log. Its methods are safe for concurrent use; they are
// called from the supervisor's, segmenter's and retention's goroutines.
type Log struct {
	deps Deps
	log  zerolog.Logger

	mu   sync.Mutex
	cams map[string]*camState
}

type camState struct {
	lastEnd time.Time    // end of the newest footage
	open    *catalog.Gap // the open gap, if any
	// latest is the newest run this daemon started: while it runs, its
	// segments are new footage; any other run's, or its own once it has
	// ended, are the last footage of an ended run.
	latest      string
	latestEnded bool
	// latestRecording: the latest run wrote its first frame.
	latestRecording bool
	// replaced is the run a reload's handover replaces: the latest when a
	// new run started before its exit came. Only its exit is an older
	// run's; an attempt that ended before ffmpeg started (held by the
	// Gate, a refused probe) has a run id never started, and its cause
	// still explains the open gap.
	replaced string
	// The run and epoch of the newest segment: a later segment of the same
	// run with another epoch was named on a stepped clock.
	lastRun   string
	lastEpoch time.Time
}

// New returns a gap log.
func New(deps Deps) *Log {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Log{deps: deps, log: deps.Log.With().Str("component", "gaplog").Logger(), cams: map[string]*camState{}}
}

// Start loads each camera's last footage and open gap, and opens a
// daemon-down gap for cameras whose footage stopped without one (the
// daemon was killed, or the box lost power). Call it once, before anything
// is reported: the daemon calls it when the catalog is first usable, before
// the reports held for it (recording starts earlier; its events wait).
func (l *Log) Start(ctx context.Context, cameras []string) error {
	open, err := l.deps.Catalog.OpenGaps(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, cam := range cameras {
		st := l.cam(cam)
		if last, err := l.deps.Catalog.Latest(ctx, cam); err == nil {
			st.lastEnd = last.End
		}
		if g, ok := open[cam]; ok {
			st.open = &g
			continue
		}
		if !st.lastEnd.IsZero() {
			l.openLocked(ctx, cam, st, st.lastEnd, CauseDaemonDown, "cctvd was not running (killed, crashed or the box was off)")
		}
	}
	return nil
}

func (l *Log) cam(name string) *camState {
	st := l.cams[name]
	if st == nil {
		st = &camState{}
		l.cams[name] = st
	}
	return st
}

// causeOf maps an ffmpeg exit to a gap cause.
func causeOf(e *supervisor.Exit) string {
	switch e.Reason {
	case supervisor.ReasonStalled:
		return CauseStall
	case supervisor.ReasonAuth:
		return CauseAuth
	case supervisor.ReasonNotFound:
		return CauseNotFound
	case supervisor.ReasonUnreachable:
		return CauseUnreachable
	case supervisor.ReasonStartFailed:
		return CauseStartFailed
	case supervisor.ReasonReconfigured:
		return CauseReconfigured
	case supervisor.ReasonStorage:
		return CauseStorage
	case supervisor.ReasonStopped:
		if e.Message == "daemon shut down" {
			return CauseDaemonDown
		}
		return CauseOperatorStop
	}
	return CauseFFmpegExit
}

// specific says whether a later cause explains a gap better than the first:
// a camera that dropped the stream (ffmpeg exit) and then refuses
// connections was unreachable.
func specific(first, later string) bool {
	switch first {
	case CauseFFmpegExit, CauseStartFailed, CauseUnexplained:
		return later == CauseUnreachable || later == CauseAuth || later == CauseNotFound
	}
	return false
}

// CameraEvent takes the supervisor's events: an exit opens a gap.
func (l *Log) CameraEvent(ev supervisor.Event) {
	ctx := context.Background()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.cam(ev.Camera)
	switch ev.Kind {
	case supervisor.EventStarted:
		if st.latest != "" && !st.latestEnded {
			st.replaced = st.latest
		}
		st.latest, st.latestEnded, st.latestRecording = ev.RunID, false, false
	case supervisor.EventRecording:
		if ev.RunID == st.latest {
			st.latestRecording = true
		}
	}
	if ev.Kind != supervisor.EventExited || ev.Exit == nil {
		return
	}
	if ev.RunID == st.latest {
		st.latestEnded = true
	}
	// A reload hands a camera over (package supervisor): the old run
	// exits after the new one started. Once the new one records, the
	// footage goes on in it: no gap. Before (it failed, or never recorded
	// within the bound), the gap is the new run's to explain.
	older := ev.RunID != "" && ev.RunID == st.replaced
	if older {
		st.replaced = ""
	}
	if older && st.latestRecording && !st.latestEnded {
		return
	}
	cause := causeOf(ev.Exit)
	if st.open != nil {
		if older {
			return // the newer run's exit explains it
		}
		if specific(st.open.Cause, cause) || cause == CauseOperatorStop || cause == CauseDaemonDown || cause == CauseReconfigured || cause == CauseStorage {
			st.open.Cause, st.open.Detail = cause, ev.Exit.Message
			l.update(ctx, st.open)
		}
		return
	}
	start := st.lastEnd
	if start.IsZero() || start.After(ev.At) {
		start = ev.At
	}
	l.openLocked(ctx, ev.Camera, st, start, cause, ev.Exit.Message)
}

func (l *Log) openLocked(ctx context.Context, camera string, st *camState, start time.Time, cause, detail string) {
	g := catalog.Gap{Camera: camera, Start: start, Cause: cause, Detail: detail}
	// Open whether or not the catalog takes it now (it may be on the
	// disk that just went): the gap and its cause are kept here and
	// written at its next change.
	st.open = &g
	l.update(ctx, &g)
}

// update writes g: added when the catalog does not have it yet (ID 0: it
// could not be written when it opened), else updated.
func (l *Log) update(ctx context.Context, g *catalog.Gap) {
	if g.ID == 0 {
		id, err := l.deps.Catalog.AddGap(ctx, *g)
		if err != nil {
			l.log.Error().Err(err).Str("camera", g.Camera).Msg("cannot record gap; kept, written at its next change")
			return
		}
		g.ID = id
		return
	}
	if err := l.deps.Catalog.UpdateGap(ctx, *g); err != nil {
		l.log.Error().Err(err).Str("camera", g.Camera).Msg("cannot update gap")
	}
}

// Segment takes a closed segment: it closes the open gap, or moves its
// start when the segment continues the footage from before the gap.
func (l *Log) Segment(seg segment.Segment) {
	ctx := context.Background()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.cam(seg.Camera)
	if seg.Run != "" && seg.Run == st.lastRun && !seg.Epoch.IsZero() && !st.lastEpoch.IsZero() {
		if shift := seg.Epoch.Sub(st.lastEpoch); shift.Abs() >= Tolerance {
			// The wall clock stepped between this run's two segments: the
			// footage goes on, on the new clock. Compare there.
			st.lastEnd = st.lastEnd.Add(shift)
		}
	}
	st.lastRun, st.lastEpoch = seg.Run, seg.Epoch
	prevEnd := st.lastEnd
	if seg.End.After(st.lastEnd) {
		st.lastEnd = seg.End
	}
	if g := st.open; g != nil {
		if seg.Run != st.latest || st.latestEnded {
			// The last footage of an ended run, named after its exit.
			if seg.End.After(g.Start) {
				g.Start = seg.End
				l.update(ctx, g)
			}
			return
		}
		l.closeLocked(ctx, st, seg.Start)
		return
	}
	if !prevEnd.IsZero() && seg.Start.Sub(prevEnd) >= Tolerance {
		g := catalog.Gap{Camera: seg.Camera, Start: prevEnd, End: seg.Start, Cause: CauseUnexplained,
			Detail: "a hole between two segments with no exit or stop to explain it"}
		if _, err := l.deps.Catalog.AddGap(ctx, g); err != nil {
			l.log.Error().Err(err).Msg("cannot record gap")
		}
		l.closed(g)
	}
}

func (l *Log) closeLocked(ctx context.Context, st *camState, end time.Time) {
	g := st.open
	st.open = nil
	g.End = end
	if g.End.Sub(g.Start) < Tolerance {
		if g.ID == 0 {
			return // never written
		}
		if err := l.deps.Catalog.DeleteGap(ctx, g.ID); err != nil {
			l.log.Error().Err(err).Msg("cannot delete gap")
		}
		return
	}
	l.update(ctx, g)
	l.closed(*g)
}

func (l *Log) closed(g catalog.Gap) {
	d := g.End.Sub(g.Start)
	l.log.Info().Str("camera", g.Camera).Str("cause", g.Cause).Time("from", g.Start).Time("to", g.End).
		Float64("seconds", d.Seconds()).Msg("gap in the footage")
	if l.deps.OnClosed != nil {
		l.deps.OnClosed(g.Camera, g.Cause, d)
	}
}

// ClockStep takes a step of the wall clock. Every camera that has recorded
// gets a clock-step entry: forward, the interval the names skip (from the
// old clock's time to the new one's); back, the interval they repeat. An
// open gap is cut at the step, each part on its own clock, so no interval
// mixes the two clocks.
func (l *Log) ClockStep(step clockstep.Step) {
	ctx := context.Background()
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.cams))
	for name := range l.cams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, cam := range names {
		st := l.cams[cam]
		if st.open == nil && st.lastEnd.IsZero() {
			continue // no footage yet: nothing on either clock
		}
		if g := st.open; g != nil {
			cause, detail := g.Cause, g.Detail
			l.closeLocked(ctx, st, step.From())
			l.openLocked(ctx, cam, st, step.At, cause, detail)
		}
		g := catalog.Gap{Camera: cam, Cause: CauseClockStep}
		if step.Size > 0 {
			g.Start, g.End = step.From(), step.At
			g.Detail = fmt.Sprintf("the wall clock stepped forward by %v: names skip this interval; no footage is missing", step.Size)
		} else {
			g.Start, g.End = step.At, step.From()
			g.Detail = fmt.Sprintf("the wall clock stepped back by %v: names repeat this interval; footage recorded after the step is named on the new clock", -step.Size)
		}
		if _, err := l.deps.Catalog.AddGap(ctx, g); err != nil {
			l.log.Error().Err(err).Str("camera", cam).Msg("cannot record gap")
			continue
		}
		if step.Size > 0 {
			l.closed(g) // a hole in the timeline
		} else {
			l.log.Info().Str("camera", cam).Str("cause", g.Cause).Time("from", g.Start).Time("to", g.End).
				Msg("names repeat an interval (the clock stepped back)")
		}
	}
}

// Deleted takes a retention deletion: a segment S3 does not have is lost
// footage, a gap of its own.
func (l *Log) Deleted(r catalog.Record, cause string) {
	// S3 has it; or a quarantined file, whose interval became a gap when
	// it went to quarantine (corrupt, or salvage-failed).
	if r.Upload == catalog.Uploaded || r.Local == catalog.Quarantined {
		return
	}
	g := catalog.Gap{Camera: r.Camera, Start: r.Start, End: r.End, Cause: CauseRetention,
		Detail: "deleted before S3 had it (" + cause + ")"}
	if _, err := l.deps.Catalog.AddGap(context.Background(), g); err != nil {
		l.log.Error().Err(err).Msg("cannot record gap")
	}
	l.closed(g)
}

// Corrupt takes a segment whose file the uploader found damaged and
// quarantined before S3 had it: its interval is lost footage, a gap of its
// own. (Call it only when S3 keeps no earlier upload of the segment.)
func (l *Log) Corrupt(r catalog.Record, why string) {
	if r.End.Sub(r.Start) < Tolerance { // a segment of no length: nothing lost
		return
	}
	g := catalog.Gap{Camera: r.Camera, Start: r.Start, End: r.End, Cause: CauseCorrupt,
		Detail: r.Name() + " is damaged (" + why + "); moved to quarantine, not uploaded"}
	if _, err := l.deps.Catalog.AddGap(context.Background(), g); err != nil {
		l.log.Error().Err(err).Msg("cannot record gap")
	}
	l.closed(g)
}

// Quarantined takes a segment that could not be salvaged: the open gap, if
// the camera has one, is explained by it.
func (l *Log) Quarantined(camera, file string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.cam(camera); st.open != nil && (st.open.Cause == CauseFFmpegExit || st.open.Cause == CauseUnexplained) {
		st.open.Cause, st.open.Detail = CauseSalvageFailed, file+" could not be salvaged (moved to quarantine)"
		l.update(context.Background(), st.open)
	}
}

// Gaps lists a camera's gaps overlapping [from, to).
func (l *Log) Gaps(ctx context.Context, camera string, from, to time.Time) ([]catalog.Gap, error) {
	return l.deps.Catalog.Gaps(ctx, camera, from, to)
}
