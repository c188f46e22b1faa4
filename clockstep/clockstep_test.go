package clockstep

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/fakeclock"
)

func TestDetect(t *testing.T) {
	t0 := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	tests := []struct {
		name       string
		wall, mono time.Duration // progress of each clock since the previous look
		want       time.Duration // the step, 0 for none
	}{
		{"time passes", sec(1), sec(1), 0},
		{"a late look (busy machine) is no step", sec(7), sec(7), 0},
		{"slewing is no step", sec(1.0005), sec(1), 0},
		{"just under the threshold", sec(3), sec(1), 0},
		{"forward an hour", time.Hour + sec(1), sec(1), time.Hour},
		{"back an hour", -time.Hour + sec(1), sec(1), -time.Hour},
		{"back 3 s", sec(-2), sec(1), sec(-3)},
		{"a suspended box: both clocks moved", sec(600), sec(600), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, ok := Detect(t0, sec(100), t0.Add(tt.wall), sec(100)+tt.mono, 2*time.Second)
			if ok != (tt.want != 0) || step.Size != tt.want {
				t.Fatalf("Detect = %+v, %v; want a step of %v", step, ok, tt.want)
			}
			if ok && (!step.At.Equal(t0.Add(tt.wall)) || !step.From().Equal(t0.Add(tt.mono))) {
				t.Errorf("step from %v to %v, want from %v to %v", step.From(), step.At, t0.Add(tt.mono), t0.Add(tt.wall))
			}
		})
	}
}

// TestDetectorReportsSteps runs the detector on the fake clock: time passing
// is no step; the wall clock stepped back, then forward, is reported each
// time with its size and direction.
func TestDetectorReportsSteps(t *testing.T) {
	clock, waits := fakeclock.New(time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC), 100)
	steps := make(chan Step, 10)
	d := New(Config{}, Deps{Log: zerolog.Nop(), Now: clock.Now, Mono: clock.Mono, After: clock.After,
		OnStep: func(s Step) { steps <- s }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	}()

	look := func(before func()) {
		t.Helper()
		select {
		case d := <-waits: // the detector waits for its next look
			if d != DefaultInterval {
				t.Fatalf("waits %v between looks, want %v", d, DefaultInterval)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the detector does not wait for its next look")
		}
		if before != nil {
			before()
		}
		clock.Advance(DefaultInterval)
	}
	expect := func(size time.Duration, dir string) {
		t.Helper()
		look(nil) // the next wait begins only after the previous look's report
		if size == 0 {
			select {
			case s := <-steps:
				t.Fatalf("reported %+v, want no step", s)
			default:
			}
			return
		}
		select {
		case s := <-steps:
			if s.Size != size || s.Direction() != dir {
				t.Fatalf("step %+v (%s), want %v %s", s, s.Direction(), size, dir)
			}
		default:
			t.Fatalf("no step reported, want %v", size)
		}
	}
	look(nil)
	expect(0, "")
	look(func() { clock.StepWall(-time.Hour) })
	expect(-time.Hour, "back")
	look(func() { clock.StepWall(90 * time.Minute) })
	expect(90*time.Minute, "forward")
	look(nil)
	expect(0, "")
}
