package gaplog

import (
	"context"
	"sync"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/clockstep"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
)

// DefaultQueueLimit is how many reports a Queue holds before it drops the
// oldest.
const DefaultQueueLimit = 10000

// Queue hands the gap log what happens without making the reporter wait.
// The supervisor's events come from a camera's goroutines, which read
// ffmpeg's output: they must never wait on a catalog write (a slow or
// stuck disk would stall ffmpeg behind a full pipe). Every method queues
// and returns; Run applies the reports in the order they were queued, on
// its own goroutine. Run is meant to run while the catalog is usable (the
// daemon runs it beside the uploader and retention): what it has not
// applied when it stops stays queued for the next Run. Beyond the limit
// the oldest reports are dropped, counted (Status), and said once per
// episode (until the queue is empty again).
type Queue struct {
	log   *Log
	limit int

	mu       sync.Mutex
	items    []func()
	dropped  int64
	dropping bool // in an episode of drops: warned already
	wake     chan struct{}
}

// NewQueue returns a Queue in front of l holding at most limit reports
// (DefaultQueueLimit when limit <= 0).
func NewQueue(l *Log, limit int) *Queue {
	if limit <= 0 {
		limit = DefaultQueueLimit
	}
	return &Queue{log: l, limit: limit, wake: make(chan struct{}, 1)}
}

// CameraEvent queues Log.CameraEvent.
func (q *Queue) CameraEvent(ev supervisor.Event) { q.put(func() { q.log.CameraEvent(ev) }) }

// Segment queues Log.Segment.
func (q *Queue) Segment(seg segment.Segment) { q.put(func() { q.log.Segment(seg) }) }

// ClockStep queues Log.ClockStep.
func (q *Queue) ClockStep(step clockstep.Step) { q.put(func() { q.log.ClockStep(step) }) }

// Deleted queues Log.Deleted.
func (q *Queue) Deleted(r catalog.Record, cause string) { q.put(func() { q.log.Deleted(r, cause) }) }

// Corrupt queues Log.Corrupt.
func (q *Queue) Corrupt(r catalog.Record, why string) { q.put(func() { q.log.Corrupt(r, why) }) }

// Quarantined queues Log.Quarantined.
func (q *Queue) Quarantined(camera, file string) { q.put(func() { q.log.Quarantined(camera, file) }) }

// QueueStatus is what waits in a Queue, and what it dropped since start.
type QueueStatus struct {
	Waiting int   `json:"waiting"`
	Dropped int64 `json:"dropped"`
}

// Status says how many reports wait and how many were dropped.
func (q *Queue) Status() QueueStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueStatus{Waiting: len(q.items), Dropped: q.dropped}
}

// Len is how many reports wait.
func (q *Queue) Len() int { return q.Status().Waiting }

func (q *Queue) put(fn func()) {
	q.mu.Lock()
	if len(q.items) >= q.limit {
		q.items = q.items[1:]
		q.dropped++
		if !q.dropping {
			q.dropping = true
			defer q.warnDropped()
		}
	}
	q.items = append(q.items, fn)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) warnDropped() {
	q.log.log.Warn().Int("limit", q.limit).Msg("too many gap-log reports wait for the catalog: dropping the oldest (counted in /status, catalog.gapLogDropped)")
}

// Run applies the queued reports, in order, until ctx ends; then it applies
// what is queued already and returns.
func (q *Queue) Run(ctx context.Context) error {
	for {
		q.drain()
		select {
		case <-ctx.Done():
			q.drain()
			return nil
		case <-q.wake:
		}
	}
}

// drain applies the reports queued, one at a time, without holding the
// lock while one is applied.
func (q *Queue) drain() {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.dropping = false // caught up: the next drop is a new episode
			q.mu.Unlock()
			return
		}
		fn := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		fn()
	}
}
