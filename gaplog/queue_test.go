package gaplog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
)

// stuckCatalog is a real catalog whose gap writes wait until the test
// releases them: a disk that hangs.
type stuckCatalog struct {
	*catalog.Catalog
	release chan struct{}
}

func (c stuckCatalog) AddGap(ctx context.Context, g catalog.Gap) (int64, error) {
	<-c.release
	return c.Catalog.AddGap(ctx, g)
}

// TestQueueNeverBlocksTheReporter: while the catalog's writes hang, a
// camera's events are queued and its goroutine goes on; once the writes
// go through, Run applies them in order; what is reported while Run is
// stopped waits for the next Run.
func TestQueueNeverBlocksTheReporter(t *testing.T) {
	cat := stuckCatalog{Catalog: openCatalog(t), release: make(chan struct{})}
	l := New(Deps{Log: zerolog.Nop(), Catalog: cat})
	if err := l.Start(context.Background(), []string{"cam"}); err != nil {
		t.Fatal(err)
	}
	q := NewQueue(l, 0)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- q.Run(ctx) }()

	reported := make(chan struct{})
	go func() { // a camera's goroutine
		q.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "a"})
		q.Segment(segment.Segment{Camera: "cam", Start: at(0), End: at(10), Run: "a"})
		q.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventExited, At: at(11), RunID: "a",
			Exit: &supervisor.Exit{Reason: supervisor.ReasonStalled, Message: "stalled"}})
		q.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "b"})
		close(reported)
	}()
	select {
	case <-reported:
	case <-time.After(10 * time.Second):
		t.Fatal("reporting to the gap log waited for the catalog")
	}
	close(cat.release)
	stop() // Run applies what is queued, then returns
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if q.Len() != 0 {
		t.Fatalf("%d reports left queued", q.Len())
	}

	// Stopped: reports wait for the next Run, which applies them in order.
	q.Segment(segment.Segment{Camera: "cam", Start: at(40), End: at(50), Run: "b"})
	if q.Len() != 1 {
		t.Fatalf("%d reports queued while Run is stopped, want 1", q.Len())
	}
	ctx, stop = context.WithCancel(context.Background())
	stop()
	q.Run(ctx) // applies what is queued, then returns
	gaps, err := cat.Gaps(context.Background(), "cam", time.Time{}, time.Time{})
	if err != nil || len(gaps) != 1 || gaps[0].Cause != CauseStall || !gaps[0].Start.Equal(at(10)) || !gaps[0].End.Equal(at(40)) {
		t.Errorf("gaps %+v, %v; want one stall from 10 s to 40 s", gaps, err)
	}
}

// TestQueueDropsTheOldestBeyondItsLimit: beyond its limit the queue drops
// the oldest, counts every drop in its status, and warns once per episode:
// again only after it caught up.
func TestQueueDropsTheOldestBeyondItsLimit(t *testing.T) {
	var logs testenv.Buffer
	l := New(Deps{Log: zerolog.New(&logs), Catalog: openCatalog(t)})
	q := NewQueue(l, 2)
	seg := func(i int) segment.Segment {
		return segment.Segment{Camera: "cam", Start: at(float64(10 * i)), End: at(float64(10*i + 10))}
	}
	for i := range 5 {
		q.Segment(seg(i))
	}
	if st := q.Status(); st.Waiting != 2 || st.Dropped != 3 || q.Len() != 2 {
		t.Errorf("status %+v, len %d; want 2 waiting and 3 dropped", st, q.Len())
	}
	const warning = "dropping the oldest"
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("%d warnings in one episode, want 1:\n%s", n, logs.String())
	}
	q.drain() // caught up
	for i := 5; i < 8; i++ {
		q.Segment(seg(i))
	}
	if st := q.Status(); st.Waiting != 2 || st.Dropped != 4 {
		t.Errorf("status %+v after the second episode; want 2 waiting and 4 dropped", st)
	}
	if n := strings.Count(logs.String(), warning); n != 2 {
		t.Errorf("%d warnings after a second episode, want 2:\n%s", n, logs.String())
	}
}
