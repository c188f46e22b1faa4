package gaplog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/clockstep"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
)

// TestGapLogEdges: what each cause relabels, what retention's deletions
// and failed salvages mean, and the tolerance's edge (a hole of exactly
// Tolerance is a gap; shorter is jitter).
func TestGapLogEdges(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{"a dropped stream, then the camera refuses the password: auth",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonExited, 11), start("b"), exit(supervisor.ReasonAuth, 14),
				start("c"), seg("c", 30, 40)},
			[]string{"10-30 auth"}},
		{"a dropped stream, then the path is gone: not-found",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonExited, 11), start("b"), exit(supervisor.ReasonNotFound, 14),
				start("c"), seg("c", 30, 40)},
			[]string{"10-30 not-found"}},
		{"an auth failure is not relabelled by a later unreachable",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonAuth, 11), start("b"), exit(supervisor.ReasonUnreachable, 14),
				start("c"), seg("c", 30, 40)},
			[]string{"10-30 auth"}},
		{"retention deleting an uploaded segment loses no footage",
			[]step{start("a"), seg("a", 0, 10), seg("a", 10, 20), {deletedUploaded: [2]float64{0, 10}}, seg("a", 20, 30)},
			nil},
		{"retention deleting a segment S3 lacks, beside an uploaded one",
			[]step{start("a"), seg("a", 0, 10), seg("a", 10, 20), {deletedUploaded: [2]float64{0, 10}}, {lost: [2]float64{10, 20}}},
			[]string{"10-20 retention"}},
		{"a failed salvage explains an ffmpeg exit",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonExited, 11), {quarantined: "R1-00000.mp4"}, start("b"), seg("b", 20, 30)},
			[]string{"10-20 salvage-failed"}},
		{"a failed salvage does not relabel a stall",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonStalled, 25), {quarantined: "R1-00000.mp4"}, start("b"), seg("b", 30, 40)},
			[]string{"10-30 stall"}},
		{"a failed salvage with no gap open changes nothing",
			[]step{start("a"), seg("a", 0, 10), {quarantined: "R1-00000.mp4"}, seg("a", 10, 20)}, nil},
		{"a hole of exactly the tolerance is a gap",
			[]step{start("a"), seg("a", 0, 10), seg("a", 11, 20)}, []string{"10-11 unexplained"}},
		{"a hole just under the tolerance is jitter",
			[]step{start("a"), seg("a", 0, 10), seg("a", 10.999, 20)}, nil},
		{"a restart that leaves exactly the tolerance is a gap",
			[]step{start("a"), seg("a", 0, 10), exit(supervisor.ReasonExited, 10), start("b"), seg("b", 11, 20)}, []string{"10-11 ffmpeg-exit"}},
		{"a corrupt segment of exactly the tolerance is lost footage",
			[]step{start("a"), seg("a", 0, 10), seg("a", 10, 11), {corrupt: [2]float64{10, 11}}}, []string{"10-11 corrupt"}},
		{"a corrupt segment shorter than the tolerance is nothing lost",
			[]step{start("a"), seg("a", 0, 10), seg("a", 10, 10.5), {corrupt: [2]float64{10, 10.5}}}, nil},
		// The epoch moving by exactly the tolerance is a clock step: the
		// next segment abuts on the new clock instead of leaving a hole.
		{"an epoch moved by exactly the tolerance is a step of the clock",
			[]step{start("a"), segE("a", 0, 10, 0), segE("a", 11, 20, 1)}, nil},
		{"an epoch moved by less than the tolerance is jitter",
			[]step{start("a"), segE("a", 0, 10, 0), segE("a", 11, 20, 0.5)}, []string{"10-11 unexplained"}},
		{"another run's epoch is no step of the clock",
			[]step{start("a"), segE("a", 0, 10, 0), start("b"), segE("b", 15, 20, 5)}, []string{"10-15 unexplained"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkSteps(t, tt.steps, tt.want, 0) })
	}
}

// TestClockStepDetail: each entry says which way the clock went and by
// how much, with the interval the right way round.
func TestClockStepDetail(t *testing.T) {
	for _, tt := range []struct {
		by         time.Duration
		from, to   float64
		detail     string
		reportedAs int // entries passed to OnClosed
	}{
		{-time.Hour, 22 - 3600, 22, "stepped back by 1h0m0s", 0},
		{90 * time.Second, 12, 102, "stepped forward by 1m30s", 1},
	} {
		cat := openCatalog(t)
		closed := 0
		l := New(Deps{Log: zerolog.Nop(), Catalog: cat, OnClosed: func(string, string, time.Duration) { closed++ }})
		l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "a"})
		l.Segment(segment.Segment{Camera: "cam", Start: at(0), End: at(10), Run: "a"})
		stepAt := tt.to
		if tt.by < 0 {
			stepAt = tt.from
		}
		l.ClockStep(clockstep.Step{At: at(stepAt), Size: tt.by})
		gaps, _ := cat.Gaps(context.Background(), "cam", time.Time{}, time.Time{})
		if len(gaps) != 1 {
			t.Fatalf("step %v: gaps %+v", tt.by, gaps)
		}
		g := gaps[0]
		if g.Cause != CauseClockStep || !g.Start.Equal(at(tt.from)) || !g.End.Equal(at(tt.to)) || !strings.Contains(g.Detail, tt.detail) {
			t.Errorf("step %v: %v-%v %s %q, want %v-%v clock-step %q", tt.by, g.Start.Sub(t0).Seconds(), g.End.Sub(t0).Seconds(),
				g.Cause, g.Detail, tt.from, tt.to, tt.detail)
		}
		if closed != tt.reportedAs {
			t.Errorf("step %v: reported %d times as a hole in the footage, want %d", tt.by, closed, tt.reportedAs)
		}
	}
}

// TestCatalogFailures: a gap log whose catalog fails says so at start and
// logs every write it could not make, and goes on taking events.
func TestCatalogFailures(t *testing.T) {
	cat := openCatalog(t)
	var logs strings.Builder
	l := New(Deps{Log: zerolog.New(&logs), Catalog: cat})
	if err := l.Start(context.Background(), []string{"cam"}); err != nil {
		t.Fatal(err)
	}
	l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "a"})
	l.Segment(segment.Segment{Camera: "cam", Start: at(0), End: at(10), Run: "a"})
	cat.Close() // every write fails from here on

	if err := New(Deps{Log: zerolog.Nop(), Catalog: cat}).Start(context.Background(), []string{"cam"}); err == nil {
		t.Error("Start with a catalog that cannot be read: no error")
	}
	count := func() int { return strings.Count(logs.String(), `"level":"error"`) }
	steps := []struct {
		what string
		do   func()
	}{
		{"an unexplained hole", func() { l.Segment(segment.Segment{Camera: "cam", Start: at(15), End: at(20), Run: "a"}) }},
		{"a lost segment", func() {
			l.Deleted(catalog.Record{Camera: "cam", Start: at(0), End: at(10), Upload: catalog.Pending}, catalog.CauseSizeLimit)
		}},
		{"a corrupt segment", func() {
			l.Corrupt(catalog.Record{Camera: "cam", Start: at(10), End: at(20), Path: "/x/y.mp4"}, "empty")
		}},
		{"a clock step", func() { l.ClockStep(clockstep.Step{At: at(100), Size: time.Minute}) }},
	}
	for _, s := range steps {
		before := count()
		s.do()
		if count() != before+1 {
			t.Errorf("%s the catalog could not record: %d error lines, want 1 more than %d:\n%s", s.what, count(), before, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "cannot record gap") {
		t.Errorf("log does not say what failed:\n%s", logs.String())
	}
}

// TestCatalogFailuresOnOpenGaps: an open gap whose update or deletion the
// catalog refuses is logged, not lost silently.
func TestCatalogFailuresOnOpenGaps(t *testing.T) {
	for _, tt := range []struct {
		name, msg string
		next      segment.Segment
	}{
		{"moved by the ended run's last segment", "cannot update gap", segment.Segment{Camera: "cam", Start: at(10), End: at(12), Run: "a"}},
		{"closed too short to keep", "cannot delete gap", segment.Segment{Camera: "cam", Start: at(10.5), End: at(20), Run: "b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cat := openCatalog(t)
			var logs strings.Builder
			l := New(Deps{Log: zerolog.New(&logs), Catalog: cat})
			l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "a"})
			l.Segment(segment.Segment{Camera: "cam", Start: at(0), End: at(10), Run: "a"})
			l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventExited, At: at(10), RunID: "a",
				Exit: &supervisor.Exit{Reason: supervisor.ReasonExited}})
			l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "b"})
			cat.Close()
			l.Segment(tt.next)
			if !strings.Contains(logs.String(), tt.msg) {
				t.Errorf("want %q logged:\n%s", tt.msg, logs.String())
			}
		})
	}
}
