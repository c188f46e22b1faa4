//go:build integration

package uploader

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/fakeclock"
	"github.com/cctvd/cctvd/internal/redact"
)

// TestWallClockStepBackDoesNotStallRetries: the wall clock steps back an
// hour (a box that booted without an RTC, then NTP; an operator's `date`)
// while uploads fail; the retries keep their spacing (1 s, 2 s, 4 s: the
// monotonic clock orders them) and the upload goes through as soon as S3
// can take it, not an hour later.
func TestWallClockStepBackDoesNotStallRetries(t *testing.T) {
	e := newEnv(t)
	r := e.addSegment("cam1", t0, 20<<10)
	clock, waits := fakeclock.New(t0, 1000)
	client, err := NewClient(context.Background(), e.clientC)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var failedAt []time.Duration // on the monotonic clock
	done := make(chan catalog.Record, 1)
	u := New(Config{Bucket: "later", Prefix: "rec/2025", SavePath: e.save, RetryInitial: time.Second, RetryMax: 8 * time.Second}, Deps{
		Log: zerolog.New(redact.NewWriter(redact.New(e.secret), e.logs)), Catalog: e.cat, S3: client, Redactor: redact.New(e.secret),
		Clock:      clock,
		OnUploaded: func(r catalog.Record, _ time.Duration) { done <- r },
		OnFailed: func(catalog.Record, error) {
			mu.Lock()
			defer mu.Unlock()
			failedAt = append(failedAt, clock.Mono())
		},
	})
	run := &running{u: u, done: make(chan struct{}), ok: done}
	run.start(t)

	// The bucket does not exist yet: every attempt fails at once. The test
	// moves the fake clock by exactly each wait the uploader starts (but
	// the one-minute safety net), so attempts happen when they are due.
	deadline := time.After(time.Minute)
	advance := func(until func() bool) {
		t.Helper()
		for !until() {
			select {
			case d := <-waits:
				if d < time.Minute {
					clock.Advance(d)
				}
			case <-deadline:
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("stalled: failures at %v, status %+v, monotonic %v", failedAt, u.Status(), clock.Mono())
			}
		}
	}
	advance(func() bool { return u.Status().Failures >= 1 })
	clock.StepWall(-time.Hour)
	advance(func() bool { return u.Status().Failures >= 4 })
	mu.Lock()
	spacing := []time.Duration{failedAt[1] - failedAt[0], failedAt[2] - failedAt[1], failedAt[3] - failedAt[2]}
	mu.Unlock()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if spacing[i] < want*8/10 || spacing[i] > want*12/10 {
			t.Errorf("retry %d came %v after the previous, want %v ±20%% (all: %v)", i+2, spacing[i], want, spacing)
		}
	}

	e.minio.CreateBucket("later")
	uploaded := false
	advance(func() bool {
		select {
		case <-done:
			uploaded = true
		default:
		}
		return uploaded
	})
	if mono := clock.Mono(); mono > 30*time.Second {
		t.Errorf("uploaded %v (monotonic) after the first attempt; the retries should take about 15 s", mono)
	}
	if row, _ := e.cat.Get(context.Background(), r.ID); row.Upload != catalog.Uploaded {
		t.Errorf("row: %+v", row)
	}
}

// TestPendingIsDueAtOnceAfterARestart: a segment whose next attempt the
// catalog says is an hour away (a wall-clock time written before a restart)
// goes up at once: the schedule lived in memory, on the monotonic clock.
func TestPendingIsDueAtOnceAfterARestart(t *testing.T) {
	e := newEnv(t)
	r := e.addSegment("cam1", t0, 20<<10)
	ctx := context.Background()
	e.cat.StartAttempt(ctx, r.ID)
	e.cat.MarkFailed(ctx, r.ID, "S3 unreachable", time.Now().Add(time.Hour))
	run := e.run(Config{}, e.clientC)
	run.await(t, 1, 30*time.Second)
}
