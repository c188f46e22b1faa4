package activity

import (
	"bytes"
	"image"
	"image/jpeg"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const s = time.Second

// feed adds the scene's frames every gop from `from` to `to`, with a moving
// square while on says so.
func feed(tr *Tracker, run string, sc *scene, from, to, gop time.Duration, on func(time.Duration) bool) {
	for pts := from; pts < to; pts += gop {
		var objs []square
		if on(pts) {
			objs = append(objs, moving(pts))
		}
		tr.Add(run, sc.frame(pts, 1, 0, objs...))
	}
}

func TestSegmentsSplitAnIntervalAtTheirBoundary(t *testing.T) {
	sc := newScene(3)
	tr := NewTracker(Params{}, 0)
	on := func(p time.Duration) bool { return p >= 6*s && p < 16*s }
	feed(tr, "r", sc, 0, 11*s, s, on) // frames up to 10 s: the first segment [0, 10) is complete only with the frame at 10
	first, k := tr.Summarize("r", 0, 10*s, true)
	if k != Final {
		t.Fatalf("segment [0,10) with a frame at 10 s: knowledge %d, want final", k)
	}
	if len(first.Intervals) != 1 || first.Intervals[0].End != 10*s || (first.Intervals[0].Start-6*s).Abs() > s {
		t.Fatalf("first segment's intervals: %v, want one from about 6 s to its end", first.Intervals)
	}
	if got := first.Score; got < 0.35 || got > 0.5 {
		t.Errorf("first segment's score %.3f, want about 0.4", got)
	}
	feed(tr, "r", sc, 11*s, 25*s, s, on)
	second, k := tr.Summarize("r", 10*s, 20*s, true)
	if k != Final || len(second.Intervals) != 1 {
		t.Fatalf("second segment: knowledge %d, intervals %v", k, second.Intervals)
	}
	iv := second.Intervals[0]
	if iv.Start != 0 || (iv.End-6*s).Abs() > s || iv.Peak < iv.Start || iv.Peak > iv.End || iv.Level <= 0 {
		t.Errorf("second segment's interval (offsets from its start) %+v, want from 0 to about 6 s with its own peak", iv)
	}
	if second.Frames != 10 {
		t.Errorf("second segment analysed %d frames, want 10", second.Frames)
	}
	third, _ := tr.Summarize("r", 20*s, 25*s, true)
	if len(third.Intervals) != 0 || third.Score != 0 {
		t.Errorf("a still segment has activity: %+v", third)
	}
}

func TestSummaryKnowledge(t *testing.T) {
	sc := newScene(3)
	tr := NewTracker(Params{}, 0)
	never := func(time.Duration) bool { return false }
	if _, k := tr.Summarize("r", 0, 10*s, true); k != Unknown {
		t.Errorf("a run never seen: knowledge %d, want unknown", k)
	}
	feed(tr, "r", sc, 0, 10*s, s, never) // the last frame at 9 s
	if _, k := tr.Summarize("r", 0, 10*s, true); k != Provisional {
		t.Errorf("without a frame at or after the end: knowledge %d, want provisional", k)
	}
	// The frame list rounds to milliseconds: a frame 1 ms before the
	// segment list's end is the next segment's first.
	tr.Add("r", sc.frame(10*s-time.Millisecond, 1, 0))
	sum, k := tr.Summarize("r", 0, 10*s, true)
	if k != Final || sum.Frames != 10 {
		t.Errorf("with the boundary frame: knowledge %d, frames %d; want final, 10", k, sum.Frames)
	}
	// A new run ends the old one: its last segment is final.
	feed(tr, "r2", sc, 0, 2*s, s, never)
	if _, k := tr.Summarize("r", 12*s, 14*s, true); k != Unknown {
		t.Errorf("an ended run's segment without frames: knowledge %d, want unknown", k)
	}
	if _, k := tr.Summarize("r2", 0, 1*s, true); k != Final {
		t.Errorf("the new run's first second: knowledge %d, want final", k)
	}
}

func TestRunEndClosesTheOpenInterval(t *testing.T) {
	sc := newScene(3)
	tr := NewTracker(Params{}, 0)
	feed(tr, "r", sc, 0, 8*s, s, func(p time.Duration) bool { return p >= 3*s })
	ch := tr.EndRun("r")
	if ch == nil || ch.Started || ch.At != 7*s {
		t.Fatalf("end of run with motion: change %+v, want an end at 7 s (the last motion)", ch)
	}
	sum, k := tr.Summarize("r", 0, 8*s, true)
	if k != Final || len(sum.Intervals) != 1 || sum.Intervals[0].End != 7*s {
		t.Errorf("after the end: knowledge %d, intervals %v", k, sum.Intervals)
	}
}

func jpegOf(t *testing.T, f Frame) []byte {
	t.Helper()
	img := &image.Gray{Pix: f.Pix, Stride: f.W, Rect: image.Rect(0, 0, f.W, f.H)}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestServiceFinalisesALateSegment(t *testing.T) {
	sc := newScene(3)
	var mu sync.Mutex
	var finals []Summary
	var events []Event
	epoch := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	svc := NewService(Config{}, Deps{Log: zerolog.Nop(),
		OnFinal: func(ref SegmentRef, sum Summary) {
			mu.Lock()
			defer mu.Unlock()
			if ref.Tag != "seg-1" {
				t.Errorf("late summary of %v", ref.Tag)
			}
			finals = append(finals, sum)
		},
		OnEvent: func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }})
	offer := func(from, to time.Duration) {
		for pts := from; pts < to; pts += s {
			var objs []square
			if pts >= 4*s {
				objs = append(objs, moving(pts))
			}
			svc.Offer(Input{Camera: "c", Run: "r", PTS: pts, Epoch: epoch, JPEG: jpegOf(t, sc.frame(pts, 1, 0, objs...))})
		}
		svc.drain()
	}
	offer(0, 9*s)
	ref := SegmentRef{Camera: "c", Run: "r", From: 0, To: 10 * s, Tag: "seg-1"}
	prov, k := svc.Segment(ref)
	if k != Provisional || len(prov.Intervals) != 1 || prov.Intervals[0].End != 10*s {
		t.Fatalf("segment closed before its last frame: knowledge %d, intervals %v", k, prov.Intervals)
	}
	if st := svc.Status(); st.Waiting != 1 || st.Frames != 9 {
		t.Errorf("status %+v, want one segment waiting, 9 frames", st)
	}
	offer(9*s, 11*s) // its last frame (motion), then the next segment's first
	mu.Lock()
	defer mu.Unlock()
	if len(finals) != 1 || finals[0].Frames != 10 {
		t.Fatalf("final summaries %v, want one of 10 frames", finals)
	}
	if st := svc.Status(); st.Late != 1 || st.Waiting != 0 {
		t.Errorf("status %+v, want one late segment, none waiting", st)
	}
	if len(events) != 1 || !events[0].Started || !events[0].At.Equal(epoch.Add(3500*time.Millisecond)) {
		t.Errorf("events %+v, want one start at epoch + 3.5 s", events)
	}
}

func TestServiceDropsFramesWhenBehind(t *testing.T) {
	var logs bytes.Buffer
	svc := NewService(Config{Queue: 2}, Deps{Log: zerolog.New(&logs)})
	var taken int
	for i := range 5 {
		if svc.Offer(Input{Camera: "c", Run: "r", PTS: time.Duration(i) * s, JPEG: []byte("x")}) {
			taken++
		}
	}
	if !svc.Offer(Input{Camera: "c", Run: "r", End: true}) {
		t.Error("a run's end was dropped")
	}
	st := svc.Status()
	if taken != 2 || st.Dropped != 3 {
		t.Errorf("took %d, dropped %d; want 2 and 3", taken, st.Dropped)
	}
	if n := strings.Count(logs.String(), "dropping frames"); n != 1 {
		t.Errorf("%d warnings for one episode of drops, want 1:\n%s", n, logs.String())
	}
	svc.drain()
	if st := svc.Status(); st.Undecodable != 2 {
		t.Errorf("undecodable = %d, want 2 (the frames were not JPEG)", st.Undecodable)
	}
}

func TestServiceTimesOutAWaitingSegment(t *testing.T) {
	sc := newScene(3)
	var now time.Duration
	var finals int
	svc := NewService(Config{PendingTimeout: 10 * s}, Deps{Log: zerolog.Nop(), Mono: func() time.Duration { return now },
		OnFinal: func(SegmentRef, Summary) { finals++ }})
	for pts := time.Duration(0); pts < 5*s; pts += s {
		svc.Offer(Input{Camera: "c", Run: "r", PTS: pts, JPEG: jpegOf(t, sc.frame(pts, 1, 0))})
	}
	svc.drain()
	if _, k := svc.Segment(SegmentRef{Camera: "c", Run: "r", From: 0, To: 10 * s}); k != Provisional {
		t.Fatalf("knowledge %d, want provisional", k)
	}
	now = 9 * s
	svc.expire()
	if finals != 0 {
		t.Fatal("made final before the timeout")
	}
	now = 10 * s
	svc.expire()
	if finals != 1 || svc.Status().Waiting != 0 {
		t.Errorf("after the timeout: %d finals, %d waiting; want 1 and 0", finals, svc.Status().Waiting)
	}
}

// An object that blends into the background at one keyframe (a white
// square over a white bar) is not two intervals: a still spell must last
// two sampling periods to end one, whatever the GOP.
func TestAMomentaryDropoutDoesNotSplitAnInterval(t *testing.T) {
	for _, gop := range []time.Duration{time.Second, 4 * time.Second} {
		sc := newScene(3)
		tr := NewTracker(Params{}, 0)
		dropout := 20 * s
		for pts := time.Duration(0); pts < 60*s; pts += gop {
			var objs []square
			on := pts >= 8*s && pts < 40*s
			if on && (pts < dropout || pts >= dropout+gop) {
				objs = append(objs, moving(pts))
			}
			tr.Add("r", sc.frame(pts, 1, 0, objs...))
		}
		tr.EndRun("r")
		sum, _ := tr.Summarize("r", 0, 60*s, true)
		if len(sum.Intervals) != 1 {
			t.Errorf("GOP %v: one keyframe without the object split the motion: %v", gop, sum.Intervals)
		}
	}
}

// A segment ending in a still spell shorter than the hold is provisional:
// whether the interval ends there or goes on is known only when the spell
// ends or the motion resumes; either way its pieces then join.
func TestAStillSpellAtASegmentsEndWaits(t *testing.T) {
	for _, resume := range []bool{true, false} {
		sc := newScene(3)
		tr := NewTracker(Params{}, 0)
		gop := 4 * s
		on := func(p time.Duration) bool { return p >= 16*s && (p < 40*s || (resume && p >= 44*s && p < 56*s)) }
		feed(tr, "r", sc, 0, 44*s, gop, on) // frames to 40 s: motion to 36, still at 40 (the hold is two GOPs, 8 s)
		if _, k := tr.Summarize("r", 0, 40*s, true); k != Provisional {
			t.Fatalf("resume %v: a segment ending in a short still spell is %d, want provisional", resume, k)
		}
		feed(tr, "r", sc, 44*s, 60*s, gop, on) // 44: motion again, or still (the spell reaches the hold)
		first, k := tr.Summarize("r", 0, 40*s, true)
		if k != Final || len(first.Intervals) != 1 {
			t.Fatalf("resume %v: %d %v", resume, k, first.Intervals)
		}
		end := first.Intervals[0].End
		second, _ := tr.Summarize("r", 40*s, 60*s, true)
		switch {
		case resume && (end != 40*s || len(second.Intervals) != 1 || second.Intervals[0].Start != 0):
			t.Errorf("motion resumed: first segment's interval ends at %v, the second's %v: not one interval across the boundary", end, second.Intervals)
		case !resume && (end != 38*s || len(second.Intervals) != 0):
			t.Errorf("motion over: the interval ends at %v (want 38 s, between the last motion and the first still frame), second segment %v", end, second.Intervals)
		}
	}
}
