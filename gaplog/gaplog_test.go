package gaplog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/clockstep"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
)

var t0 = time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// step is one thing that happens to camera "cam": a run starts, a segment
// [from, to] in seconds of a run closes, a run exits with a reason at a
// time, retention deletes a segment S3 does not have, the uploader finds
// one damaged and quarantines it, or the wall clock steps.
type step struct {
	start   string
	run     string
	seg     [2]float64
	epoch   *float64 // the segment's run epoch, if known
	exit    supervisor.ExitReason
	msg     string
	exitAt  float64
	lost    [2]float64
	corrupt [2]float64
	clock   [2]float64 // a clock step: seen at [0] (new clock) by [1]
	// deletedUploaded: retention deleted a segment S3 has (no footage lost)
	deletedUploaded [2]float64
	// quarantined: a staged file of the camera could not be salvaged
	quarantined string
	// recording: the run wrote its first frame
	recording string
}

func start(run string) step                 { return step{start: run} }
func seg(run string, from, to float64) step { return step{run: run, seg: [2]float64{from, to}} }

// segE is a segment of a run whose stream time 0 was at epoch (seconds
// from t0, on the clock the segment was named on).
func segE(run string, from, to, epoch float64) step {
	return step{run: run, seg: [2]float64{from, to}, epoch: &epoch}
}

// clock is a step of the wall clock by seconds, seen at at (new clock).
func clock(at, by float64) step { return step{clock: [2]float64{at, by}} }

func exit(reason supervisor.ExitReason, at float64) step {
	return step{exit: reason, exitAt: at, msg: string(reason)}
}

// exitOf is the exit of run, not the last started (a reload's handover).
func exitOf(run string, reason supervisor.ExitReason, at float64) step {
	return step{run: run, exit: reason, exitAt: at, msg: string(reason)}
}

func recording(run string) step { return step{recording: run} }

func TestGapLog(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []string // "start-end cause", seconds from t0; end "open"
	}{
		{"abutting segments: no gap", []step{start("a"), seg("a", 0, 10), seg("a", 10.4, 20), seg("a", 20, 30)}, nil},
		{"stall, then the dying run's last segment, then recovery",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonStalled, 25), start("b"), seg("a", 10, 13), seg("b", 28, 38)},
			[]string{"13-28 stall"}},
		{"camera dropped the stream, then refused: unreachable",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonExited, 11), start("b"), exit(supervisor.ReasonUnreachable, 14),
				start("c"), exit(supervisor.ReasonUnreachable, 20), start("d"), seg("d", 30, 40)},
			[]string{"10-30 unreachable"}},
		{"a stall is not relabelled by later failures",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonStalled, 25), start("b"), exit(supervisor.ReasonUnreachable, 30), start("c"), seg("c", 40, 50)},
			[]string{"10-40 stall"}},
		{"still open", []step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonAuth, 11)}, []string{"10-open auth"}},
		{"operator stop, the finalised segment, start", []step{start("a"), seg("a", 0, 10), {exit: supervisor.ReasonStopped, msg: "stopped by operator", exitAt: 12},
			seg("a", 10, 12), start("b"), seg("b", 60, 70)},
			[]string{"12-60 operator-stop"}},
		{"restart too quick to leave a hole", []step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonExited, 10), start("b"), seg("b", 10.5, 20)}, nil},
		{"unexplained hole", []step{start("a"), seg("a", 0, 10), seg("a", 15, 20)}, []string{"10-15 unexplained"}},
		{"lost to retention", []step{start("a"), seg("a", 0, 10), {lost: [2]float64{0, 10}}, seg("a", 10, 20)}, []string{"0-10 retention"}},
		{"damaged, quarantined", []step{start("a"), seg("a", 0, 10), seg("a", 10, 20), {corrupt: [2]float64{10, 20}}, seg("a", 20, 30)},
			[]string{"10-20 corrupt"}},
		{"the disk went: ffmpeg died on it, then was held until it came back",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonExited, 11), start("b"), exit(supervisor.ReasonStorage, 12),
				start("c"), seg("c", 40, 50)},
			[]string{"10-40 storage-unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkSteps(t, tt.steps, tt.want, 0) })
	}
}

// TestGapLogAcrossAHandover: a reload that changes a recording camera
// starts the new run (b) before it stops the old one (a, reconfigured),
// once b records: their footage overlaps, and no gap is logged, even for a
// moment; a new run that never recorded leaves the gap it explains.
func TestGapLogAcrossAHandover(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{"a's last segment closes before b's first", []step{start("a"), seg("a", 0, 10), seg("a", 10, 20), start("b"), recording("b"),
			exitOf("a", supervisor.ReasonReconfigured, 23.2), seg("a", 20, 23.2), seg("b", 21.5, 31.5), seg("b", 31.5, 41.5)}, nil},
		{"no gap opens at a's exit", []step{start("a"), seg("a", 0, 20), start("b"), recording("b"),
			exitOf("a", supervisor.ReasonReconfigured, 23.2), seg("a", 20, 23.2)}, nil},
		{"b's first segment closes before a exits (short segments)", []step{start("a"), seg("a", 18, 20), start("b"), recording("b"),
			seg("a", 20, 22), seg("b", 21.5, 23.5), exitOf("a", supervisor.ReasonReconfigured, 23.2), seg("a", 22, 23.2), seg("b", 23.5, 25.5)}, nil},
		{"b never recorded within the bound: the hole is the reload's", []step{start("a"), seg("a", 0, 20), start("b"),
			exitOf("a", supervisor.ReasonReconfigured, 35), seg("a", 20, 35), recording("b"), seg("b", 40, 50)},
			[]string{"35-40 reconfigured"}},
		{"b was refused: the gap is the refusal's, not the reload's", []step{start("a"), seg("a", 0, 20), start("b"),
			exitOf("b", supervisor.ReasonAuth, 22), exitOf("a", supervisor.ReasonReconfigured, 22.5), seg("a", 20, 22.5),
			start("c"), recording("c"), seg("c", 60, 70)},
			[]string{"22.5-60 auth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkSteps(t, tt.steps, tt.want, 0) })
	}
}

// TestGapLogExitOfARunNeverStarted: an attempt that ends before ffmpeg
// starts (the Gate held it for the disk, the camera refused mode auto's
// probe) reports its exit under its own run id with no EventStarted
// before it (supervisor's held, probeRefused). It is not a handover's old
// run: its cause still explains the open gap better (review5).
func TestGapLogExitOfARunNeverStarted(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{"the disk went: ffmpeg died on it, then the Gate held the next start",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonExited, 11), exitOf("b", supervisor.ReasonStorage, 12),
				start("c"), seg("c", 40, 50)},
			[]string{"10-40 storage-unavailable"}},
		{"a run that never recorded, then mode auto's probe was refused",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonExited, 11), start("b"), exit(supervisor.ReasonExited, 12),
				exitOf("c", supervisor.ReasonAuth, 14), start("d"), seg("d", 40, 50)},
			[]string{"10-40 auth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkSteps(t, tt.steps, tt.want, 0) })
	}
}

// TestGapLogAcrossClockSteps: the run's epoch moves with the wall clock
// (the supervisor derives it anew at each progress block), so segments on
// either side of a step abut on the new clock; the step itself is a
// clock-step entry.
func TestGapLogAcrossClockSteps(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []string
		// uncounted: entries not reported to OnClosed (names repeating
		// after a step back are no missing footage)
		uncounted int
	}{
		{"clock stepped back an hour mid-run", []step{start("a"), segE("a", 0, 10, 0), segE("a", 10, 20, 0), clock(22-3600, -3600),
			segE("a", 20-3600, 30-3600, -3600), segE("a", 30-3600, 40-3600, -3600)},
			[]string{"-3578-22 clock-step"}, 1},
		{"clock stepped forward an hour mid-run", []step{start("a"), segE("a", 0, 10, 0), clock(3612, 3600),
			segE("a", 3610, 3620, 3600), segE("a", 3620, 3630, 3600)},
			[]string{"12-3612 clock-step"}, 0},
		{"the step is seen after the first segment named on the new clock", []step{start("a"), segE("a", 0, 10, 0),
			segE("a", 10-3600, 20-3600, -3600), clock(21-3600, -3600), segE("a", 20-3600, 30-3600, -3600)},
			[]string{"-3579-21 clock-step"}, 1},
		{"a hole after a step is still a hole", []step{start("a"), segE("a", 0, 10, 0), clock(12-3600, -3600),
			segE("a", 15-3600, 20-3600, -3600)},
			[]string{"-3590--3585 unexplained", "-3588-12 clock-step"}, 1},
		{"a gap open across a step back is cut, each part on its clock", []step{start("a"), segE("a", 0, 10, 0), exit(supervisor.ReasonStalled, 12),
			clock(20-3600, -3600), start("b"), segE("b", 30-3600, 40-3600, 30-3600)},
			[]string{"-3580--3570 stall", "-3580-20 clock-step", "10-20 stall"}, 1},
		{"no footage yet: nothing to mark", []step{clock(100, 3600), start("a"), segE("a", 100, 110, 100)}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkSteps(t, tt.steps, tt.want, tt.uncounted) })
	}
}

// checkSteps plays steps on a new gap log and checks its gaps against want
// ("start-end cause", seconds from t0; end "open"), and that every closed
// one but uncounted was reported to OnClosed.
func checkSteps(t *testing.T, steps []step, want []string, uncounted int) {
	t.Helper()
	cat := openCatalog(t)
	var closed []string
	var logs strings.Builder
	l := New(Deps{Log: zerolog.New(&logs), Catalog: cat, OnClosed: func(c, cause string, d time.Duration) {
		closed = append(closed, fmt.Sprintf("%s %v", cause, d))
	}})
	if err := l.Start(context.Background(), []string{"cam"}); err != nil {
		t.Fatal(err)
	}
	current := "" // the run an exit belongs to: the last started
	for _, s := range steps {
		switch {
		case s.start != "":
			current = s.start
			l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: s.start})
		case s.recording != "":
			l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventRecording, RunID: s.recording})
		case s.exit != "":
			l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventExited, At: at(s.exitAt), RunID: cmp.Or(s.run, current),
				Exit: &supervisor.Exit{Reason: s.exit, Message: s.msg}})
		case s.corrupt != [2]float64{}:
			l.Corrupt(catalog.Record{Camera: "cam", Start: at(s.corrupt[0]), End: at(s.corrupt[1]), Path: "/x/cam_x.mp4"}, "the file is empty")
		case s.lost != [2]float64{}:
			l.Deleted(catalog.Record{Camera: "cam", Start: at(s.lost[0]), End: at(s.lost[1]), Upload: catalog.Pending}, catalog.CauseSizeLimit)
		case s.deletedUploaded != [2]float64{}:
			l.Deleted(catalog.Record{Camera: "cam", Start: at(s.deletedUploaded[0]), End: at(s.deletedUploaded[1]), Upload: catalog.Uploaded}, catalog.CauseSizeLimit)
		case s.quarantined != "":
			l.Quarantined("cam", s.quarantined)
		case s.clock != [2]float64{}:
			l.ClockStep(clockstep.Step{At: at(s.clock[0]), Size: time.Duration(s.clock[1] * float64(time.Second))})
		default:
			sg := segment.Segment{Camera: "cam", Start: at(s.seg[0]), End: at(s.seg[1]), Run: s.run}
			if s.epoch != nil {
				sg.Epoch = at(*s.epoch)
			}
			l.Segment(sg)
		}
	}
	gaps, _ := l.Gaps(context.Background(), "cam", time.Time{}, time.Time{})
	var got []string
	for _, g := range gaps {
		end := "open"
		if !g.End.IsZero() {
			end = fmt.Sprint(g.End.Sub(t0).Seconds())
		}
		got = append(got, fmt.Sprintf("%v-%s %s", g.Start.Sub(t0).Seconds(), end, g.Cause))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("gaps %q, want %q", got, want)
	}
	wantClosed := -uncounted
	for _, w := range want {
		if !strings.Contains(w, "open") {
			wantClosed++
		}
	}
	if len(closed) != wantClosed {
		t.Errorf("OnClosed called %d times (%v), want %d", len(closed), closed, wantClosed)
	}
	// The catalog took every write: nothing is logged as failed.
	if strings.Contains(logs.String(), `"level":"error"`) {
		t.Errorf("errors logged:\n%s", logs.String())
	}
}

// TestDaemonDownIsFoundAtStart: footage stopped without a gap (the daemon
// was killed): the next start opens a daemon-down gap at its end.
func TestDaemonDownIsFoundAtStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, layout.DayRel("cam", t0), segment.Name("cam", "x", t0, at(10), 0))
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("x"), 0o644)
	cat2, _ := catalog.Open(ctx, filepath.Join(dir, ".cctvd", layout.CatalogName), dir, nil)
	defer cat2.Close()
	cat2.Add(ctx, segment.Segment{Camera: "cam", FeedID: "x", Start: t0, End: at(10), Path: p, Size: 1}, "k")
	l := New(Deps{Log: zerolog.Nop(), Catalog: cat2})
	if err := l.Start(ctx, []string{"cam", "new-cam"}); err != nil {
		t.Fatal(err)
	}
	l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "new"})
	l.Segment(segment.Segment{Camera: "cam", Start: at(100), End: at(110), Run: "new"})
	gaps, _ := cat2.Gaps(ctx, "cam", time.Time{}, time.Time{})
	if len(gaps) != 1 || gaps[0].Cause != CauseDaemonDown || !gaps[0].Start.Equal(at(10)) || !gaps[0].End.Equal(at(100)) {
		t.Errorf("gaps %+v", gaps)
	}
	if gaps, _ := cat2.Gaps(ctx, "new-cam", time.Time{}, time.Time{}); len(gaps) != 0 {
		t.Errorf("a camera with no footage yet has gaps: %+v", gaps)
	}
}

func openCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	dir := t.TempDir()
	c, err := catalog.Open(context.Background(), filepath.Join(dir, layout.CatalogName), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// awayCatalog is the real catalog, away (every write fails, as when its
// disk went) while away is set.
type awayCatalog struct {
	*catalog.Catalog
	away bool
}

func (a *awayCatalog) AddGap(ctx context.Context, g catalog.Gap) (int64, error) {
	if a.away {
		return 0, errors.New("catalog: add gap: unable to open database file (14)")
	}
	return a.Catalog.AddGap(ctx, g)
}

// TestGapOpenedWhileTheCatalogIsAwayKeepsItsCause: the disk goes, ffmpeg
// exits for it while the catalog (on that disk) cannot be written; the
// gap and its cause are kept and written when the disk is back, not
// found later as an unexplained hole.
func TestGapOpenedWhileTheCatalogIsAwayKeepsItsCause(t *testing.T) {
	cat := &awayCatalog{Catalog: openCatalog(t)}
	var closed []string
	l := New(Deps{Log: zerolog.Nop(), Catalog: cat, OnClosed: func(c, cause string, d time.Duration) { closed = append(closed, cause) }})
	if err := l.Start(context.Background(), []string{"cam"}); err != nil {
		t.Fatal(err)
	}
	l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "a"})
	l.Segment(segment.Segment{Camera: "cam", Start: at(0), End: at(10), Run: "a"})
	cat.away = true
	l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventExited, At: at(11), RunID: "a",
		Exit: &supervisor.Exit{Reason: supervisor.ReasonStorage, Message: "stopped: savePath's disk is not available"}})
	l.Segment(segment.Segment{Camera: "cam", Start: at(10), End: at(10.5), Run: "a"}) // the run's last, moved in once back
	cat.away = false
	l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "b"})
	l.Segment(segment.Segment{Camera: "cam", Start: at(13), End: at(15), Run: "b"})
	gaps, err := l.Gaps(context.Background(), "cam", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || gaps[0].Cause != CauseStorage || !gaps[0].Start.Equal(at(10.5)) || !gaps[0].End.Equal(at(13)) {
		t.Errorf("gaps %+v, want 10.5-13 %s", gaps, CauseStorage)
	}
	if len(closed) != 1 || closed[0] != CauseStorage {
		t.Errorf("closed %v", closed)
	}
}
