package alerts

import (
	"context"
	"errors"
	"time"
)

// AttemptTimeout bounds one delivery attempt, whatever the target does.
const AttemptTimeout = 30 * time.Second

// deliverLoop delivers target's events one at a time, oldest first: an
// event that fails is tried again after RetryDelay (on the monotonic
// clock) until RetryFor has passed, and the events behind it wait. A
// target that hangs holds up its own queue only.
func (s *Service) deliverLoop(ctx context.Context, t Target) {
	var ready <-chan struct{}
	if w, ok := t.(Waker); ok {
		ready = w.Ready()
	}
	name := t.Name()
	for ctx.Err() == nil {
		changed := s.outbox.Changed()
		ev, body, d, ok := s.outbox.Head(name)
		if !ok {
			s.setPending(name)
			select {
			case <-ctx.Done():
			case <-changed:
			}
			continue
		}
		if now := s.clock.Mono(); d.next > now {
			select {
			case <-ctx.Done():
			case <-s.clock.After(d.next - now):
			case <-ready:
				s.outbox.Update(ev.ID, name, func(d *Delivery) { d.next = 0 })
			}
			continue
		}
		start := s.clock.Mono()
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		err := t.Deliver(actx, ev, body)
		cancel()
		if err != nil && ctx.Err() != nil {
			return // cut short by the stop: not an attempt; it waits for the next run
		}
		s.settle(t, ev, err, start)
	}
}

// settle records an attempt's outcome.
func (s *Service) settle(t Target, ev Event, err error, start time.Duration) {
	name := t.Name()
	end, wall := s.clock.Mono(), s.clock.Now()
	var msg string
	if err != nil {
		msg = s.deps.Redact(err.Error())
	}
	// The target's status first, then the event's: whoever sees the event
	// settled (the outbox's change) sees the target's status of that attempt.
	s.vmu.Lock()
	ts := s.tstatus[name]
	was := ts.State
	if err == nil {
		ts.State, ts.LastError, ts.LastSuccess = "ok", "", wall
	} else {
		ts.State, ts.LastError = "failing", msg
	}
	s.vmu.Unlock()
	var st DeliveryState
	s.outbox.Update(ev.ID, name, func(d *Delivery) {
		d.Attempts++
		from := d.last
		if from == 0 {
			from = start
		}
		d.TriedSeconds += seconds(end - from)
		d.last = end
		switch {
		case err == nil:
			d.State, d.At, d.LastError = Delivered, wall, ""
		case errors.Is(err, ErrRejected):
			d.State, d.At, d.LastError = Rejected, wall, msg
		case time.Duration(d.TriedSeconds*float64(time.Second)) >= s.cfg.RetryFor:
			d.State, d.At, d.LastError = Expired, wall, msg
		default:
			d.LastError = msg
			d.next = end + RetryDelay(d.Attempts, s.cfg.RetryMin, s.cfg.RetryMax)
		}
		st = d.State
	})
	log := s.log.With().Str("target", name).Str("id", ev.ID).Str("alert", string(ev.Type)).Logger()
	switch {
	case err == nil && was == "failing":
		log.Info().Msg("alert target reachable again")
	case err == nil:
		log.Debug().Msg("alert delivered")
	case st == Rejected:
		log.Warn().Str("error", msg).Msg("alert target refused the event: it is not sent again")
	case st == Expired:
		log.Warn().Str("error", msg).Msg("alert not delivered: given up after trying for " + s.cfg.RetryFor.String())
	case was == "ok":
		log.Warn().Str("error", msg).Msg("alert target failing: the event is tried again with backoff (said once until it succeeds)")
	}
	s.setPending(name)
}

func (s *Service) setPending(name string) {
	n := 0
	for _, e := range s.outbox.Recent(s.cfg.MaxEvents) {
		for _, d := range e.Deliveries {
			if d.Target == name && d.State == Pending {
				n++
			}
		}
	}
	s.vmu.Lock()
	s.tstatus[name].Pending = n
	s.vmu.Unlock()
}

// View is what GET /api/v1/alerts shows.
type View struct {
	// Open are the conditions raised now, oldest first.
	Open []OpenCondition `json:"open"`
	// Events are the newest events, newest first, with their deliveries.
	Events  []Entry        `json:"events"`
	Targets []TargetStatus `json:"targets"`
	// Queue: facts waiting for the alerts' goroutine, and those dropped.
	Queue struct {
		Waiting int   `json:"waiting"`
		Dropped int64 `json:"dropped"`
	} `json:"queue"`
	// Outbox: deliveries pending, events dropped from a full outbox, and
	// whether every change is in its file.
	Outbox struct {
		Pending int   `json:"pending"`
		Dropped int64 `json:"dropped"`
		Saved   bool  `json:"saved"`
	} `json:"outbox"`
}

// View returns the open conditions, the newest limit events and the
// targets' states.
func (s *Service) View(limit int) View {
	var v View
	s.vmu.Lock()
	v.Open = append([]OpenCondition{}, s.open...)
	for _, t := range s.deps.Targets {
		v.Targets = append(v.Targets, *s.tstatus[t.Name()])
	}
	s.vmu.Unlock()
	if v.Targets == nil {
		v.Targets = []TargetStatus{}
	}
	v.Events = s.outbox.Recent(limit)
	if v.Events == nil {
		v.Events = []Entry{}
	}
	s.qmu.Lock()
	v.Queue.Waiting, v.Queue.Dropped = len(s.queue), s.qdropped
	s.qmu.Unlock()
	v.Outbox.Pending, v.Outbox.Dropped = s.outbox.Waiting()
	v.Outbox.Saved = s.outbox.Saved() && s.outbox.Loaded()
	return v
}
