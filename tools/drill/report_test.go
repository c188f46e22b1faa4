package drill

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// The drill's arithmetic on made-up footage: seconds from t0.

var rt0 = time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)

func rat(s float64) time.Time { return rt0.Add(time.Duration(s * float64(time.Second))) }

// segs are 4 s segments of camera c from..to, each playing played seconds.
func segs(from, to, played float64) []object {
	var out []object
	for s := from; s+4 <= to+1e-9; s += 4 {
		out = append(out, object{key: "k", camera: "c", start: rat(s), end: rat(s + 4), played: time.Duration(played * float64(time.Second))})
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// stallDrill: cctvd started at 0, footage from 1 to 29, a stall at 29
// cleared at 41, footage again from 43 (a recovery of 2 s) to 99, the
// camera stopped at 99.
func stallDrill(cause string, played float64) (*drill, []object) {
	d := &drill{names: []string{"c"}, firstStart: rat(0)}
	d.faults = []*Fault{{Kind: KindStall, Name: "stall", Cameras: []string{"c"}, At: rat(29), Cleared: rat(41), Target: cameraTarget}}
	d.gaps = map[string][]gapEntry{"c": {{Start: rat(29), End: rat(43), Cause: cause}}}
	found := append(segs(1, 29, played), segs(43, 99, played)...)
	return d, found
}

func TestContinuityCountsRecoveryAndStartUp(t *testing.T) {
	d, found := stallDrill("stall", 4)
	d.recoveries(found)
	c, odd := d.continuity("c", found, rat(99))
	f := d.faults[0]
	// Window 99 s, the stall's own 12 s left out: 87 s, of which 28 + 56
	// = 84 have footage; the start-up (1 s) and the recovery (2 s) are lost.
	if !near(c.Window, 99) || !near(c.FaultTime, 12) || !near(c.Covered, 84) || !near(c.Lost(), 3) || c.StartUp != time.Second {
		t.Errorf("window %v, faults' own %v, covered %v, lost %v, start-up %v", c.Window, c.FaultTime, c.Covered, c.Lost(), c.StartUp)
	}
	if !near(c.Continuity(), 84.0/87) {
		t.Errorf("continuity %.4f, want %.4f", c.Continuity(), 84.0/87)
	}
	// The older measure leaves out the start-up and the stall until
	// footage resumed: everything left has footage.
	if !near(c.UpOld, 84) || !near(c.ContinuityOld(), 1) {
		t.Errorf("older measure %v of %v", c.CoveredOld, c.UpOld)
	}
	if f.Recovery != 2*time.Second || !f.Recovered || !near(f.Lost, 14) || !slices.Equal(f.Causes, []string{"stall"}) || !f.OK() {
		t.Errorf("fault: recovery %v, lost %v, causes %v, ok %v", f.Recovery, f.Lost, f.Causes, f.OK())
	}
	if len(odd) != 0 || !c.OK() {
		t.Errorf("holes at no fault %v, camera ok %v", odd, c.OK())
	}
	// Allowed: start-up's 10 s, the stall's 15 s, 1% of 87 s.
	if !near(c.Allowed, 10+15+0.87) {
		t.Errorf("allowed %v", c.Allowed)
	}
}

// TestContinuityIsWhatPlays: segments named 4 s long that play 3 s leave
// a second out of four without footage. By their names (or metadata) the
// camera had every second; by what plays, 75%.
func TestContinuityIsWhatPlays(t *testing.T) {
	d := &drill{names: []string{"c"}, firstStart: rat(0), gaps: map[string][]gapEntry{}}
	found := segs(0, 100, 3)
	d.recoveries(found)
	c, odd := d.continuity("c", found, rat(100))
	if !near(c.Continuity(), 0.75) || c.OK() {
		t.Errorf("continuity %.3f, ok %v; want 0.75, failing", c.Continuity(), c.OK())
	}
	if c.EndSkew != time.Second {
		t.Errorf("end skew %v, want 1s", c.EndSkew)
	}
	if len(odd) != 0 { // holes of 1 s are within Abut: no gap expected, but no footage either
		t.Errorf("holes %v", odd)
	}
}

func TestHoleCauseMustBeTheFaults(t *testing.T) {
	d, found := stallDrill("ffmpeg-exit", 4)
	d.recoveries(found)
	d.continuity("c", found, rat(99))
	f := d.faults[0]
	if f.OK() || !slices.Equal(f.WrongCauses, []string{"c:ffmpeg-exit"}) {
		t.Errorf("a stall explained as ffmpeg-exit: ok %v, wrong causes %v", f.OK(), f.WrongCauses)
	}

	// Two gaps overlap the hole: the one that covers most of it counts.
	d, found = stallDrill("", 4)
	d.gaps["c"] = []gapEntry{{Start: rat(20), End: rat(30), Cause: "unreachable"}, {Start: rat(30), End: rat(43), Cause: "stall"}}
	d.recoveries(found)
	d.continuity("c", found, rat(99))
	if f := d.faults[0]; !f.OK() || !slices.Equal(f.Causes, []string{"stall"}) {
		t.Errorf("causes %v, wrong %v", f.Causes, f.WrongCauses)
	}

	// No gap at all: unexplained, wrong for any fault.
	d, found = stallDrill("", 4)
	d.gaps["c"] = nil
	d.recoveries(found)
	c, _ := d.continuity("c", found, rat(99))
	if f := d.faults[0]; f.OK() || c.Holes["unexplained"] != 14 {
		t.Errorf("a hole the gap log does not have: fault ok %v, holes %v", f.OK(), c.Holes)
	}
}

func TestHoleAtNoFault(t *testing.T) {
	d := &drill{names: []string{"c"}, firstStart: rat(0)}
	found := append(segs(0, 40, 4), segs(48, 100, 4)...)
	for _, cause := range []string{"unexplained", "stall", "retention"} {
		d.gaps = map[string][]gapEntry{"c": {{Start: rat(40), End: rat(48), Cause: cause}}}
		_, odd := d.continuity("c", found, rat(100))
		if want := cause != "retention"; (len(odd) > 0) != want {
			t.Errorf("a hole at no fault, cause %s: flagged %v, want %v", cause, odd, want)
		}
	}
}

func TestRecoveryTargets(t *testing.T) {
	// A slow recovery: footage back 20 s after the camera (target 15 s).
	d := &drill{names: []string{"c"}, firstStart: rat(0)}
	d.faults = []*Fault{{Kind: KindCameraDown, Cameras: []string{"c"}, At: rat(20), Cleared: rat(26), Target: cameraTarget}}
	d.gaps = map[string][]gapEntry{"c": {{Start: rat(20), End: rat(46), Cause: "unreachable"}}}
	found := append(segs(0, 20, 4), segs(46, 102, 4)...)
	d.recoveries(found)
	c, _ := d.continuity("c", found, rat(102))
	if f := d.faults[0]; f.OK() || f.Recovery != 20*time.Second {
		t.Errorf("recovery %v, ok %v", f.Recovery, f.OK())
	}
	if !near(c.Lost(), 20) { // the recovery, all of it
		t.Errorf("lost %v, want 20", c.Lost())
	}

	// A fault without a target cannot pass.
	if (&Fault{Recovered: true}).OK() {
		t.Error("a fault without a target passed")
	}

	// S3: the backlog is judged by when each segment recorded before S3's
	// return first appeared in the bucket.
	s3f := &Fault{Kind: KindS3Down, s3: true, At: rat(50), Cleared: rat(70), Target: s3Target}
	d = &drill{faults: []*Fault{s3f}}
	found = []object{{key: "a", camera: "c", start: rat(52)}, {key: "b", camera: "c", start: rat(66)}, {key: "c", camera: "c", start: rat(80)}}
	d.samples.firstSeen = map[string]time.Time{"a": rat(75), "b": rat(140), "c": rat(500)}
	d.recoveries(found)
	if !s3f.Recovered || s3f.Recovery != 70*time.Second || s3f.OK() {
		t.Errorf("S3 backlog 70 s after its return: recovery %v, ok %v", s3f.Recovery, s3f.OK())
	}
	d.samples.firstSeen["b"] = rat(100)
	s3f.Recovery = 0
	d.recoveries(found)
	if !s3f.OK() || s3f.Recovery != 30*time.Second {
		t.Errorf("S3 backlog 30 s after its return: recovery %v, ok %v", s3f.Recovery, s3f.OK())
	}
	delete(d.samples.firstSeen, "a")
	d.recoveries(found)
	if s3f.Recovered || s3f.OK() {
		t.Error("a segment recorded during the outage never reached S3, yet the fault recovered")
	}
}

func TestStartUpTarget(t *testing.T) {
	d := &drill{names: []string{"c"}, firstStart: rat(0), gaps: map[string][]gapEntry{}}
	found := segs(12, 100, 4)
	c, _ := d.continuity("c", found, rat(100))
	if c.StartUp != 12*time.Second || c.OK() {
		t.Errorf("first footage 12 s after the start: start-up %v, ok %v", c.StartUp, c.OK())
	}
}

func TestLossBeforeUpload(t *testing.T) {
	rel := func(s float64) string {
		return layout.DayRel("c", rat(s)) + "/" + segment.Name("c", "drill", rat(s), rat(s+4), 0)
	}
	d := &drill{gaps: map[string][]gapEntry{"c": {{Start: rat(40), End: rat(48), Cause: "retention"}, {Start: rat(60), End: rat(64), Cause: "stall"}}}}
	for _, tt := range []struct {
		v    vanished
		want string
	}{
		{vanished{Rel: rel(40)}, ""},
		{vanished{Rel: rel(44)}, ""},
		{vanished{Rel: rel(40), UploadedLeft: true}, "uploaded segments were still on disk"},
		{vanished{Rel: rel(60)}, "no retention gap over it"},
		{vanished{Rel: rel(100)}, "no retention gap over it"},
		{vanished{Rel: "c/x/notes.txt"}, "not a segment name"},
	} {
		if got := d.lossExplained(tt.v); got != tt.want {
			t.Errorf("%s (uploaded left %v): %q, want %q", tt.v.Rel, tt.v.UploadedLeft, got, tt.want)
		}
	}
}

func TestReportWrite(t *testing.T) {
	d, found := stallDrill("stall", 4)
	d.recoveries(found)
	c, _ := d.continuity("c", found, rat(99))
	r := &Report{Duration: 99 * time.Second, Cameras: []CameraReport{c}, Faults: d.faults, Objects: len(found)}
	var b strings.Builder
	r.Write(&b)
	for _, want := range []string{"96.55%", "100.00%", "2.0s (recording again)", "stall (stall)", "PASS"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
