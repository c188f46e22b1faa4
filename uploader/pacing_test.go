package uploader

import (
	"context"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/fakeclock"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestScheduleAt(t *testing.T) {
	paris := mustLoc(t, "Europe/Paris")
	sch := ScheduleFrom(config.S3Config{MaxUploadMbps: 10, TimeZone: "Europe/Paris", UploadSchedule: []config.UploadWindow{
		{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "08:00", To: "18:00", Mbps: 2},
		{From: "22:00", To: "06:00", Mbps: 50},                       // every night, past midnight
		{Days: []string{"sun"}, From: "02:30", To: "03:30", Mbps: 0}, // a pause across the spring change
		{From: "00:00", To: "24:00", Mbps: 7},                        // never wins before the nights: the first window holds
	}})
	sch.Windows = sch.Windows[:3] // the fourth is checked below
	at := func(s string) time.Time {
		tt, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	tests := []struct {
		at     string
		mbps   float64
		window int
		next   string
	}{
		{"2026-03-02 07:59", 10, -1, "2026-03-02 08:00"}, // a Monday, before work
		{"2026-03-02 08:00", 2, 0, "2026-03-02 18:00"},   // the boundary itself is inside
		{"2026-03-02 17:59", 2, 0, "2026-03-02 18:00"},
		{"2026-03-02 18:00", 10, -1, "2026-03-02 22:00"},
		{"2026-03-02 23:30", 50, 1, "2026-03-03 06:00"}, // past midnight, the window of the day before
		{"2026-03-03 05:59", 50, 1, "2026-03-03 06:00"},
		{"2026-03-07 12:00", 10, -1, "2026-03-07 22:00"}, // Saturday: no work window
		// 29 March 2026, 02:00 → 03:00 in Paris: the pause from 02:30
		// (which does not exist) starts at the change and ends at 03:30.
		{"2026-03-29 01:59", 50, 1, "2026-03-29 03:00"},
		{"2026-03-29 03:10", 50, 1, "2026-03-29 03:30"}, // the night window still holds, and comes first
	}
	for _, tt := range tests {
		mbps, w, next := sch.At(at(tt.at))
		if mbps != tt.mbps || w != tt.window || !next.Equal(at(tt.next)) {
			t.Errorf("At(%s) = %v, window %d, next %s; want %v, %d, %s", tt.at, mbps, w, next.In(paris).Format("2006-01-02 15:04 MST"), tt.mbps, tt.window, tt.next)
		}
	}
	// Without the night window, the Sunday pause shows across the change.
	pause := Schedule{Default: Unlimited, Loc: paris, Windows: []Window{sch.Windows[2]}}
	for _, tt := range []struct {
		at   string
		mbps float64
	}{{"2026-03-29 01:59", Unlimited}, {"2026-03-29 03:00", 0}, {"2026-03-29 03:29", 0}, {"2026-03-29 03:30", Unlimited},
		// 25 October 2026: 03:00 → 02:00; 02:30 comes twice, the window opens at the first.
		{"2026-10-25 02:29", Unlimited}} {
		if mbps, _, _ := pause.At(at(tt.at)); mbps != tt.mbps {
			t.Errorf("pause.At(%s) = %v, want %v", tt.at, mbps, tt.mbps)
		}
	}
	first := at("2026-10-25 02:29").Add(time.Minute) // 02:30 CEST
	if mbps, _, next := pause.At(first); mbps != 0 || next.Sub(first) != time.Hour {
		t.Errorf("the pause on the day the clock goes back: %v until %s (%s long), want 0 for one hour of wall time", mbps, next, next.Sub(first))
	}
	// A window of a whole day, listed after others, wins where they do not hold.
	all := ScheduleFrom(config.S3Config{UploadSchedule: []config.UploadWindow{{From: "00:00", To: "24:00", Mbps: 7}}, TimeZone: "UTC"})
	if mbps, w, next := all.At(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)); mbps != 7 || w != 0 || !next.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a whole day: %v %d %s", mbps, w, next)
	}
	if mbps, w, next := (Schedule{Default: Unlimited}).At(time.Now()); !math.IsInf(mbps, 1) || w != -1 || !next.IsZero() {
		t.Errorf("no schedule: %v %d %s", mbps, w, next)
	}
}

func TestScheduleOpenShare(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ws   []config.UploadWindow
		want float64
	}{
		{"no schedule", nil, 1},
		{"paused 08:00 to 18:00 every day", []config.UploadWindow{{From: "08:00", To: "18:00", Mbps: 0}}, 14.0 / 24},
		{"paused on weekdays' working hours only", []config.UploadWindow{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "09:00", To: "17:00", Mbps: 0}}, 1 - 40.0/168},
		{"a capped window does not pause", []config.UploadWindow{{From: "08:00", To: "18:00", Mbps: 1}}, 1},
		{"paused all day", []config.UploadWindow{{From: "00:00", To: "24:00", Mbps: 0}}, 0},
	}
	for _, tt := range tests {
		s := ScheduleFrom(config.S3Config{TimeZone: "UTC", UploadSchedule: tt.ws})
		if got := s.OpenShare(now); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPacerSwitchesAtTheBoundary(t *testing.T) {
	start := time.Date(2026, 3, 2, 7, 59, 50, 0, time.UTC) // a Monday
	clk, waits := fakeclock.New(start, 64)
	lim := NewLimiter()
	sch := ScheduleFrom(config.S3Config{MaxUploadMbps: 10, TimeZone: "UTC", UploadSchedule: []config.UploadWindow{{From: "08:00", To: "09:00", Mbps: 0}}})
	p := NewPacer(lim, sch, 10, clk, zerolog.Nop())
	if got := lim.Mbps(); got != 10 {
		t.Fatalf("before the window: %v Mbit/s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	if d := <-waits; d != 10*time.Second {
		t.Fatalf("the pacer waits %s, want the 10 s to the boundary", d)
	}
	clk.Advance(10 * time.Second)
	<-waits // it set the cap and waits for the next boundary
	if st := p.Status(); lim.Mbps() != 0 || !st.Paused || st.Source != SourceSchedule || !st.Until.Equal(start.Add(time.Hour+10*time.Second)) {
		t.Errorf("in the window: %v Mbit/s, %+v", lim.Mbps(), st)
	}
	api := 3.0
	p.SetOverride(&api)
	if st := p.Status(); lim.Mbps() != 3 || st.Source != SourceAPI || st.Persisted {
		t.Errorf("after PUT: %v Mbit/s, %+v", lim.Mbps(), st)
	}
	p.Reconfigure(sch, 10) // the same pacing: the API's cap holds
	if lim.Mbps() != 3 {
		t.Errorf("a reload of the same pacing dropped the API's cap: %v", lim.Mbps())
	}
	p.Reconfigure(ScheduleFrom(config.S3Config{MaxUploadMbps: 12}), 12)
	if st := p.Status(); lim.Mbps() != 12 || st.Source != SourceConfig {
		t.Errorf("after a reload that changed the pacing: %v Mbit/s, %+v", lim.Mbps(), st)
	}
	cancel()
	<-done
}

// a pipe conn whose writes are recorded.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []int
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, len(p))
	c.mu.Unlock()
	return len(p), nil
}
func (c *recordingConn) Close() error { return nil }

func TestLimiterSplitsWritesIntoBursts(t *testing.T) {
	tests := []struct {
		mbps  float64
		write int
		burst int
	}{
		{8, 500 << 10, 200e3},         // 1 MB/s: 200 ms is 200 kB
		{0.5, 100 << 10, minBurst},    // 62.5 kB/s: the floor, 16 KiB
		{800, 10 << 20, maxBurst},     // 100 MB/s: the ceiling, 4 MiB
		{Unlimited, 3 << 20, 3 << 20}, // no cap: one write
	}
	for _, tt := range tests {
		lim := NewLimiter()
		lim.SetMbps(tt.mbps)
		rc := &recordingConn{}
		c := &limitedConn{Conn: rc, l: lim, closed: make(chan struct{})}
		want := tt.burst
		n, err := c.Write(make([]byte, tt.write))
		if err != nil || n != tt.write {
			t.Fatalf("%v Mbit/s: wrote %d, %v", tt.mbps, n, err)
		}
		sum := 0
		for _, w := range rc.writes {
			if w > want {
				t.Errorf("%v Mbit/s: a write of %d bytes, past the burst %d", tt.mbps, w, want)
			}
			sum += w
		}
		if sum != tt.write || len(rc.writes) != (tt.write+want-1)/want {
			t.Errorf("%v Mbit/s: %d writes adding to %d, want %d bytes in bursts of %d", tt.mbps, len(rc.writes), sum, tt.write, want)
		}
		if lim.Sent() != int64(tt.write) {
			t.Errorf("%v Mbit/s: counted %d", tt.mbps, lim.Sent())
		}
	}
}

func TestLimiterPauseHoldsAWriteUntilRaisedOrClosed(t *testing.T) {
	lim := NewLimiter()
	lim.SetMbps(0)
	rc := &recordingConn{}
	c := &limitedConn{Conn: rc, l: lim, closed: make(chan struct{})}
	res := make(chan error, 1)
	go func() { _, err := c.Write(make([]byte, 1000)); res <- err }()
	select {
	case err := <-res:
		t.Fatalf("a paused write went through: %v", err)
	case <-time.After(100 * time.Millisecond): // a write that should not happen: nothing to await
	}
	lim.SetMbps(100)
	if err := <-res; err != nil || lim.Sent() != 1000 {
		t.Fatalf("after the pause: %v, %d sent", err, lim.Sent())
	}
	lim.SetMbps(0)
	go func() { _, err := c.Write(make([]byte, 1000)); res <- err }()
	c.Close()
	if err := <-res; err == nil {
		t.Error("closing the connection did not release the paused write")
	}
}

func TestMeterCountsOnlyTheTimeItWanted(t *testing.T) {
	var now time.Duration
	m := NewMeter(func() time.Duration { return now })
	if _, ok := m.Rate(); ok {
		t.Fatal("a rate before anything was sent")
	}
	m.SetWanting(true)
	for range 20 { // 20 s at 100 kB/s
		m.Add(100e3)
		now += time.Second
	}
	m.SetWanting(false)
	now += 2 * time.Minute // idle: not counted
	if r, ok := m.Rate(); !ok || math.Abs(r-100e3) > 100e3/20 {
		t.Errorf("rate %v %v, want about 100 kB/s", r, ok)
	}
	m.SetWanting(true) // a minute of uploads under way that send nothing (a stalled link): counted
	now += time.Minute
	if r, ok := m.Rate(); !ok || r > 100e3/3.5 || r < 100e3/4.5 {
		t.Errorf("rate with a paused minute %v, want about a quarter", r)
	}
	now += 10 * time.Minute // past the window
	if r, ok := m.Rate(); !ok || r != 0 {
		t.Errorf("a window of waiting without sending: %v %v", r, ok)
	}
}

func TestPlan(t *testing.T) {
	const mbit = 1e6 / 8 // bytes a second
	const gb = int64(1e9)
	tests := []struct {
		name  string
		in    PlanInput
		state string
		msg   string
		check func(p Plan) bool
	}{
		{"nothing waits", PlanInput{Recorded: 6 * mbit, Up: 4 * mbit, UpKnown: true}, PlanOK,
			"Uploads keep up: at 4.0 Mbit/s up against 6.0 Mbit/s recorded, nothing waits.", nil},
		{"no rate yet, no cap", PlanInput{Recorded: 6 * mbit, Cap: Unlimited, BacklogBytes: 1 * gb, BacklogSeconds: 1200}, PlanUnknown,
			"1.0 GB (20 min of footage) wait for upload; the upload rate is not measured yet.", nil},
		{"drains", PlanInput{Recorded: 2 * mbit, Up: 10 * mbit, UpKnown: true, BacklogBytes: 3600 * mbit, BacklogSeconds: 7200}, PlanOK,
			"Uploads catch up: at 10.0 Mbit/s up against 2.0 Mbit/s recorded, the 450.0 MB waiting (2 h of footage) will be in S3 in 8 min.",
			func(p Plan) bool { return p.DrainSeconds == 450 }},
		{"the cap stands in for an unmeasured rate", PlanInput{Recorded: 2 * mbit, Cap: 10 * mbit, BacklogBytes: 3600 * mbit, BacklogSeconds: 7200}, PlanOK, "",
			func(p Plan) bool { return p.UpMbps == 10 && p.DrainSeconds == 450 }},
		// The example: 4.1 up, 6.3 recorded; 30.69 GB of room
		// (free space and uploaded footage) fills in 31 h, by when 57 GB of
		// the 130 GB waiting went up; of the rest, 2.2/6.3 goes first.
		{"a deficit", PlanInput{Recorded: 6.3 * mbit, Up: 4.1 * mbit, UpKnown: true, StorageKnown: true, LimitBytes: 200 * gb, UsedBytes: 180 * gb,
			UploadedPresent: 10.69e9, BacklogBytes: 130.3e9, BacklogSeconds: 130.3e9 / (6.3 * mbit)}, PlanDeficit,
			"Footage will be deleted before upload: at 4.1 Mbit/s up against 6.3 Mbit/s recorded, the oldest 9 h waiting will be deleted before upload in 31 h.",
			func(p Plan) bool {
				reach := 30.69e9 / (2.2 * mbit)
				lost := (130.3e9 - 4.1*mbit*reach) * 2.2 / 6.3 / (6.3 * mbit)
				return math.Abs(p.LossInSeconds-reach) < 1 && math.Abs(p.LostFootageSeconds-lost) < 1 && p.UpMbps == 4.1 && p.RecordedMbps == 6.3
			}},
		{"deleting now", PlanInput{Recorded: 8 * mbit, Up: 2 * mbit, UpKnown: true, StorageKnown: true, LimitBytes: 10 * gb, UsedBytes: 10 * gb,
			BacklogBytes: 10 * gb, BacklogSeconds: 10e9 / (8 * mbit)}, PlanDeficit,
			"Footage is being deleted before upload: at 2.0 Mbit/s up against 8.0 Mbit/s recorded, the oldest 2 h waiting will not reach S3.",
			func(p Plan) bool {
				return p.LossInSeconds == 0 && math.Abs(p.LostFootageSeconds-0.75*10e9/(8*mbit)) < 1
			}},
		{"behind, the backlog goes up before retention reaches it", PlanInput{Recorded: 5 * mbit, Up: 4 * mbit, UpKnown: true, StorageKnown: true,
			LimitBytes: 100 * gb, UsedBytes: 10 * gb, BacklogBytes: 1 * gb, BacklogSeconds: 1600}, PlanDeficit,
			"Footage will be deleted before upload: at 4.0 Mbit/s up against 5.0 Mbit/s recorded, the backlog grows by 450.0 MB an hour and retention reaches footage waiting for upload in 8 days.",
			func(p Plan) bool { return p.LostFootageSeconds == 0 && p.LossInSeconds == 90e9/mbit }},
		{"behind, retention not measured", PlanInput{Recorded: 5 * mbit, Up: 4 * mbit, UpKnown: true, BacklogBytes: 1 * gb, BacklogSeconds: 1600}, PlanUnknown,
			"Uploads fall behind: at 4.0 Mbit/s up against 5.0 Mbit/s recorded, the backlog grows; retention has not measured the disk yet.", nil},
		{"paused: nothing goes up", PlanInput{Recorded: 1 * mbit, Cap: 0, StorageKnown: true, LimitBytes: 10 * gb, UsedBytes: 5 * gb, BacklogBytes: 5 * gb, BacklogSeconds: 40000},
			PlanDeficit, "", func(p Plan) bool { return p.LossInSeconds == 5e9/mbit && math.Abs(p.LostFootageSeconds-40000) < 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(tt.in)
			if p.State != tt.state || (tt.msg != "" && p.Message != tt.msg) || (tt.check != nil && !tt.check(p)) {
				t.Errorf("plan = %+v\nwant state %s, message %q", p, tt.state, tt.msg)
			}
			if strings.Contains(p.Message, "NaN") || strings.Contains(p.Message, "Inf") {
				t.Errorf("message %q", p.Message)
			}
		})
	}
}

func TestPlanDeleteAndSendTimes(t *testing.T) {
	const mbit = 1e6 / 8
	in := PlanInput{Recorded: 8 * mbit, Up: 2 * mbit, UpKnown: true, StorageKnown: true, LimitBytes: 1e9, UsedBytes: 1e9}
	// Full disk, nothing uploaded left: the oldest waiting goes as soon as
	// room is needed; one behind 60 MB of older waiting footage in 80 s.
	if d, ok := in.DeleteIn(0); !ok || d != 0 {
		t.Errorf("the oldest: %v %v", d, ok)
	}
	if d, ok := in.DeleteIn(60e6); !ok || d != 80 {
		t.Errorf("behind 60 MB: %v %v", d, ok)
	}
	if s, ok := in.SendIn(10e6, 2); !ok || s != 80 {
		t.Errorf("10 MB sharing the link with another: %v %v", s, ok)
	}
	in.Up = 9 * mbit
	if _, ok := in.DeleteIn(0); ok {
		t.Error("uploads keep up, yet a deletion time")
	}
}
