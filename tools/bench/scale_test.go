package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/cctvd/cctvd/segment"
)

// TestScaleJudge: a camera is late when its newest footage in S3 gets
// older than scaleStale at some instant of the window; uploads on time keep
// it under, a stalled upload or a camera with nothing in S3 do not.
func TestScaleJudge(t *testing.T) {
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	end := start.Add(scaleWindow)
	d := scaleDur * time.Second
	// Camera i's segments end every d from start-2d; each closes 0.2 s after
	// its end and goes up lag(i, k) after that.
	var events []event
	lag := func(cam, k int) time.Duration {
		if cam == 2 && k == 4 {
			return 3 * d // one upload held up long
		}
		return 300 * time.Millisecond
	}
	for cam := 1; cam <= 2; cam++ {
		for k := 0; ; k++ {
			segEnd := start.Add(time.Duration(k-2) * d)
			if segEnd.After(end) {
				break
			}
			name := segment.Name(fmt.Sprintf("cam%03d", cam), "bench", segEnd.Add(-d), segEnd, 0)
			closed := segEnd.Add(200 * time.Millisecond)
			events = append(events, event{Message: "segment closed", Segment: name, Time: closed},
				event{Message: "uploaded and verified", Segment: name, Time: closed.Add(lag(cam, k))})
		}
	}
	// Logged in time order, as cctvd logs them.
	for i := range events {
		for j := i + 1; j < len(events); j++ {
			if events[j].Time.Before(events[i].Time) {
				events[i], events[j] = events[j], events[i]
			}
		}
	}
	r := &scaleRun{n: 3, started: 3} // cam003 has nothing in S3
	r.judge(events, start, end)
	if r.late != 2 {
		t.Errorf("%d cameras late, want 2 (cam002's held upload, cam003 with nothing): %s", r.late, r)
	}
	if r.worstStale <= scaleStale.Seconds() {
		t.Errorf("worst %.1f s", r.worstStale)
	}
	if r.closeP99 > 1 {
		t.Errorf("p99 end to close %.1f s", r.closeP99)
	}
	one := &scaleRun{n: 1, started: 1}
	one.judge(events, start, end)
	if one.late != 0 || !one.ok() {
		t.Errorf("cam001, on time throughout: %s", one)
	}
}
