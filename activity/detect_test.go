package activity

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// scene draws synthetic frames: a still textured picture (gradients and
// bars, so that a gain can be told from an offset), gaussian noise, a
// blinking "clock" of a few pixels, lights (gain and offset, clipped like a
// camera's), and moving squares.
type scene struct {
	w, h  int
	base  []float64
	noise float64
	clock bool
	rng   *rand.Rand
}

func newScene(noise float64) *scene {
	sc := &scene{w: 160, h: 90, noise: noise, rng: rand.New(rand.NewPCG(1, 2))}
	sc.base = make([]float64, sc.w*sc.h)
	for y := range sc.h {
		for x := range sc.w {
			v := 40 + 120*float64(x)/float64(sc.w) + 30*float64(y)/float64(sc.h)
			if (x/20)%2 == 0 {
				v += 40
			}
			sc.base[y*sc.w+x] = v
		}
	}
	return sc
}

type square struct{ x, y, size int }

// frame is the picture at pts with the lights at gain and offset.
func (sc *scene) frame(pts time.Duration, gain, offset float64, objs ...square) Frame {
	pix := make([]byte, sc.w*sc.h)
	for i, v := range sc.base {
		x, y := i%sc.w, i/sc.w
		for _, o := range objs {
			if x >= o.x && x < o.x+o.size && y >= o.y && y < o.y+o.size {
				v = 235
			}
		}
		if sc.clock && y >= 2 && y < 5 && x >= 140 && x < 144 && int(pts.Seconds())%2 == 0 {
			v = 250
		}
		v = gain*v + offset + sc.rng.NormFloat64()*sc.noise
		pix[i] = byte(min(255, max(0, math.Round(v))))
	}
	return Frame{PTS: pts, W: sc.w, H: sc.h, Pix: pix}
}

// moving is a square crossing the picture, at time t into its motion.
func moving(t time.Duration) square {
	x := int(t.Seconds()*13) % 140
	return square{x: x, y: 30 + int(t.Seconds()*3)%40, size: 20}
}

func TestStillNoisySceneHasNoMotion(t *testing.T) {
	for _, tt := range []struct {
		name  string
		noise float64
		gop   time.Duration
	}{
		{"1s GOP, light noise", 2, time.Second},
		{"1s GOP, heavy noise", 8, time.Second},
		{"4s GOP, heavy noise", 8, 4 * time.Second},
		{"transcode 2 fps, heavy noise", 8, 500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := newScene(tt.noise)
			sc.clock = true
			tr := NewTracker(Params{}, 0)
			motion := 0
			end := 10 * time.Minute
			for pts := time.Duration(0); pts < end; pts += tt.gop {
				if s, _ := tr.Add("r", sc.frame(pts, 1, 0)); s.Motion {
					motion++
				}
			}
			tr.EndRun("r")
			sum, k := tr.Summarize("r", 0, end, true)
			if motion != 0 || len(sum.Intervals) != 0 || k != Final {
				t.Fatalf("a still scene: %d motion frames, intervals %v (knowledge %d)", motion, sum.Intervals, k)
			}
		})
	}
}

func TestLightsAreNotMotion(t *testing.T) {
	type step struct {
		at           time.Duration
		gain, offset float64
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"lights on: +60 levels", []step{{10 * time.Second, 1, 60}}},
		{"lights off: -60 levels", []step{{10 * time.Second, 1, -60}}},
		{"a small step: +15 levels", []step{{10 * time.Second, 1, 15}}},
		{"a step under the global guard: +11 levels", []step{{10 * time.Second, 1, 11}}},
		{"a gain under the global guard: 1.08", []step{{10 * time.Second, 1.08, 0}}},
		{"gain 1.4 (parts clip at white)", []step{{10 * time.Second, 1.4, 0}}},
		{"gain 0.6", []step{{10 * time.Second, 0.6, 0}}},
		{"exposure settling over three frames", []step{{10 * time.Second, 1.3, 20}, {11 * time.Second, 1.15, 10}, {12 * time.Second, 1.05, 3}}},
		{"on, then off again", []step{{10 * time.Second, 1, 70}, {30 * time.Second, 1, 0}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := newScene(3)
			tr := NewTracker(Params{}, 0)
			gain, offset := 1.0, 0.0
			for pts := time.Duration(0); pts < time.Minute; pts += time.Second {
				for _, s := range tt.steps {
					if pts == s.at {
						gain, offset = s.gain, s.offset
					}
				}
				if s, _ := tr.Add("r", sc.frame(pts, gain, offset)); s.Motion {
					t.Errorf("frame at %v counts as motion (share %.4f)", pts, s.Share)
				}
			}
		})
	}
}

// script is motion on and off at given times: the truth to find.
type script []Interval

func (s script) on(t time.Duration) bool {
	for _, iv := range s {
		if t >= iv.Start && t < iv.End {
			return true
		}
	}
	return false
}

func TestScriptedMotionIsFoundWithinAGOP(t *testing.T) {
	truth := script{
		{Start: 12*time.Second + 300*time.Millisecond, End: 31 * time.Second},
		{Start: 50 * time.Second, End: 58*time.Second + 700*time.Millisecond},
		{Start: 90*time.Second + 100*time.Millisecond, End: 120 * time.Second},
	}
	for _, tt := range []struct {
		name string
		gop  time.Duration
	}{
		{"copy, 1s GOP", time.Second},
		{"copy, 2s GOP", 2 * time.Second},
		{"copy, 4s GOP", 4 * time.Second},
		{"transcode, 2 fps", 500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := newScene(4)
			sc.clock = true
			tr := NewTracker(Params{}, 0)
			end := 150 * time.Second
			for pts := time.Duration(0); pts < end; pts += tt.gop {
				var objs []square
				if truth.on(pts) {
					objs = append(objs, moving(pts))
				}
				tr.Add("r", sc.frame(pts, 1, 0, objs...))
			}
			sum, _ := tr.Summarize("r", 0, end, true)
			if len(sum.Intervals) != len(truth) {
				t.Fatalf("found %d intervals, want %d: %v", len(sum.Intervals), len(truth), sum.Intervals)
			}
			for i, iv := range sum.Intervals {
				want := truth[i]
				if d := (iv.Start - want.Start).Abs(); d > tt.gop {
					t.Errorf("interval %d starts at %v, truth %v: %v off, more than a GOP (%v)", i, iv.Start, want.Start, d, tt.gop)
				}
				if d := (iv.End - want.End).Abs(); d > tt.gop {
					t.Errorf("interval %d ends at %v, truth %v: %v off, more than a GOP (%v)", i, iv.End, want.End, d, tt.gop)
				}
				if iv.Peak < iv.Start || iv.Peak > iv.End || iv.Level <= 0 {
					t.Errorf("interval %d: peak %v (level %v) outside it", i, iv.Peak, iv.Level)
				}
			}
			var on time.Duration
			for _, iv := range truth {
				on += iv.End - iv.Start
			}
			if want := float64(on) / float64(end); math.Abs(sum.Score-want) > 0.05 {
				t.Errorf("score %.3f, the scripted share of time is %.3f", sum.Score, want)
			}
		})
	}
}

func TestHeatmapShowsWhereMotionWas(t *testing.T) {
	sc := newScene(3)
	tr := NewTracker(Params{}, 0)
	for pts := time.Duration(0); pts < 40*time.Second; pts += time.Second {
		var objs []square
		if pts >= 10*time.Second && pts < 30*time.Second {
			// Top left quarter only.
			objs = append(objs, square{x: int(pts.Seconds()) * 2, y: 5 + int(pts.Seconds())%10, size: 14})
		}
		tr.Add("r", sc.frame(pts, 1, 0, objs...))
	}
	sum, _ := tr.Summarize("r", 0, 40*time.Second, true)
	var topLeft, elsewhere int
	for i, v := range sum.Heatmap {
		cx, cy := i%GridSize, i/GridSize
		if cx < 8 && cy < 8 {
			topLeft += int(v)
		} else {
			elsewhere += int(v)
		}
	}
	if topLeft == 0 || elsewhere != 0 {
		t.Errorf("heatmap: %d in the top left quarter, %d elsewhere; want some and none\n%v", topLeft, elsewhere, sum.Heatmap)
	}
	if sum.Frames != 40 {
		t.Errorf("frames = %d, want 40", sum.Frames)
	}
}

func TestDetectorReseedsOnANewSize(t *testing.T) {
	d := NewDetector(Params{})
	a := newScene(2)
	if s := d.Add(a.frame(0, 1, 0)); !s.Reseeded {
		t.Error("the first frame does not seed the background")
	}
	b := Frame{PTS: time.Second, W: 80, H: 45, Pix: make([]byte, 80*45)}
	if s := d.Add(b); !s.Reseeded || s.Motion {
		t.Errorf("a frame of another size: %+v", s)
	}
	if s := d.Add(Frame{PTS: 2 * time.Second, W: 80, H: 45, Pix: make([]byte, 10)}); s.Motion || s.Reseeded {
		t.Errorf("a short frame is analysed: %+v", s)
	}
}

// Just after the lights switch, a small change that settles (a patch of
// the picture catching up) is no motion; the same change later is.
func TestAfterTheLightsOnlyAClearChangeIsMotion(t *testing.T) {
	sc := newScene(3)
	d := NewDetector(Params{})
	for pts := time.Duration(0); pts < 20*time.Second; pts += time.Second {
		d.Add(sc.frame(pts, 1, 0))
	}
	patch := square{x: 50, y: 40, size: 9} // 81 px: 0.56 % of the picture, over MinArea
	if s := d.Add(sc.frame(20*time.Second, 1, 60)); !s.Reseeded {
		t.Fatalf("the lights' frame did not re-seed: %+v", s)
	}
	if s := d.Add(sc.frame(21*time.Second, 1, 60, patch)); s.Motion {
		t.Errorf("a small change a second after the lights counts as motion (share %.4f)", s.Share)
	}
	if s := d.Add(sc.frame(22*time.Second, 1, 60, moving(22*time.Second))); !s.Motion {
		t.Errorf("a clear change after the lights is not motion (share %.4f)", s.Share)
	}
	for pts := 23 * time.Second; pts < 40*time.Second; pts += time.Second {
		d.Add(sc.frame(pts, 1, 60))
	}
	if s := d.Add(sc.frame(40*time.Second, 1, 60, patch)); !s.Motion {
		t.Errorf("the small change, long after the lights, is not motion (share %.4f)", s.Share)
	}
}

// A camera's first frame may be black (or grey, or half drawn): the noise
// is not learnt from the jump to the real picture, or motion would go
// unseen for minutes.
func TestAFirstFrameUnlikeTheRestIsForgotten(t *testing.T) {
	sc := newScene(3)
	d := NewDetector(Params{})
	black := Frame{W: sc.w, H: sc.h, Pix: make([]byte, sc.w*sc.h)}
	d.Add(black)
	for pts := time.Second; pts < 10*time.Second; pts += time.Second {
		d.Add(sc.frame(pts, 1, 0))
	}
	for pts := 10 * time.Second; pts < 14*time.Second; pts += time.Second {
		if s := d.Add(sc.frame(pts, 1, 0, moving(pts))); !s.Motion {
			t.Errorf("motion at %v, after a black first frame, is not seen (share %.4f)", pts, s.Share)
		}
	}
}
