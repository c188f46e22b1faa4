package supervisor

import (
	"context"
	"sync"
	"time"
)

// stallSlack is how late the stall watch may fire: the deadlines of
// cameras within it are checked in one wake-up.
const stallSlack = time.Second

// stallWatch is the stall watchdog of every running ffmpeg, on one timer:
// one goroutine sleeps until the earliest deadline (plus stallSlack, so
// that cameras whose deadlines are close share the wake-up), cancels the
// runs whose progress has not advanced for the stall timeout, and sleeps
// again. With 64 cameras it wakes about once a second at most, where a
// timer per camera woke 64 goroutines every stall timeout, each re-arming
// its own timer.
type stallWatch struct {
	mono  func() time.Duration
	after func(time.Duration) <-chan time.Time

	mu   sync.Mutex
	runs map[*watchedRun]struct{}
	poke chan struct{} // a run was added: its deadline may be the earliest
}

// watchedRun is one ffmpeg run under the watch.
type watchedRun struct {
	c      *Camera
	runID  string
	wd     *watchdog // under c.mu
	cancel context.CancelCauseFunc
}

func newStallWatch(mono func() time.Duration, after func(time.Duration) <-chan time.Time) *stallWatch {
	return &stallWatch{mono: mono, after: after, runs: map[*watchedRun]struct{}{}, poke: make(chan struct{}, 1)}
}

// add puts a run under the watch until remove is called (or it stalls).
func (w *stallWatch) add(r *watchedRun) (remove func()) {
	w.mu.Lock()
	w.runs[r] = struct{}{}
	w.mu.Unlock()
	select {
	case w.poke <- struct{}{}:
	default:
	}
	return func() {
		w.mu.Lock()
		delete(w.runs, r)
		w.mu.Unlock()
	}
}

// run watches until ctx ends.
func (w *stallWatch) run(ctx context.Context) {
	for {
		var wake <-chan time.Time
		if next, ok := w.check(); ok {
			wake = w.after(max(next-w.mono(), 0) + stallSlack)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.poke:
		case <-wake:
		}
	}
}

// check stops the runs past their deadline and returns the earliest
// deadline of the others, if any.
func (w *stallWatch) check() (next time.Duration, any bool) {
	w.mu.Lock()
	var stalled []*watchedRun
	for r := range w.runs {
		r.c.mu.Lock()
		expired, deadline := r.wd.expired(w.mono()), r.wd.deadline()
		if expired {
			r.c.update(func(s *Status) { s.State = Stalled })
		}
		r.c.mu.Unlock()
		if expired {
			stalled = append(stalled, r)
			delete(w.runs, r)
			continue
		}
		if !any || deadline < next {
			next, any = deadline, true
		}
	}
	w.mu.Unlock()
	for _, r := range stalled {
		r.c.log.Warn().Dur("timeout", r.c.opts.StallTimeout).Msg("stalled: no new frames, stopping ffmpeg")
		r.c.emit(Event{Kind: EventStalled, At: r.c.deps.Now(), RunID: r.runID})
		r.cancel(errStalled)
	}
	return next, any
}
