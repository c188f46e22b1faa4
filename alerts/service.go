package alerts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/clock"
)

// GapInfo is the gap log's entry for a camera's hole in the footage.
type GapInfo struct {
	Start, End time.Time // End is zero while it is open
	Cause      string
}

// Deps are the service's collaborators.
type Deps struct {
	Log   zerolog.Logger
	Clock clock.Clock
	// Observe reads the components' states; it is called on the service's
	// goroutine, once per Poll.
	Observe func(ctx context.Context) Observation
	// Gap, if set, returns the camera's gap covering at (the newest).
	Gap func(ctx context.Context, camera string, at time.Time) (GapInfo, bool)
	// Redact masks secrets in the text of events and errors.
	Redact  func(string) string
	Targets []Target
	// RunID prefixes this run's event ids; random by default.
	RunID string
}

// Service raises the events and delivers them. Run owns the tracker and
// the outbox's file; Report, Test, View, SetPersistent and Stopping may be
// called from anywhere and never wait on a target.
type Service struct {
	cfg     Config
	deps    Deps
	log     zerolog.Logger
	clock   clock.Clock
	tracker *Tracker // Run's goroutine only
	outbox  *Outbox
	seq     atomic.Uint64

	qmu      sync.Mutex
	queue    []Fact
	qdropped int64
	dropping bool
	qwake    chan struct{}

	persistent atomic.Bool
	pwake      chan struct{}

	stopReq  chan chan struct{}
	stopped  atomic.Bool // daemon-stop was emitted
	runDone  chan struct{}
	runStart atomic.Bool

	vmu     sync.Mutex
	open    []OpenCondition
	tstatus map[string]*TargetStatus
	lastObs Observation
}

// New returns a service; Run starts it.
func New(cfg Config, deps Deps) *Service {
	cfg.setDefaults()
	if deps.Clock == nil {
		deps.Clock = clock.System()
	}
	if deps.Redact == nil {
		deps.Redact = func(s string) string { return s }
	}
	if deps.RunID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		deps.RunID = hex.EncodeToString(b)
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "alerts").Logger(), clock: deps.Clock,
		outbox: NewOutbox(cfg.OutboxPath, cfg.MaxEvents), qwake: make(chan struct{}, 1), pwake: make(chan struct{}, 1),
		stopReq: make(chan chan struct{}), runDone: make(chan struct{}), tstatus: map[string]*TargetStatus{}}
	s.tracker = NewTracker(cfg, s.newID)
	for _, t := range deps.Targets {
		s.tstatus[t.Name()] = &TargetStatus{Name: t.Name(), Kind: t.Kind(), Address: t.Address(), State: "ok"}
	}
	return s
}

// newID is the next event id: the run's id and a sequence number, so ids
// never repeat across runs, and a retry carries the id it was given.
func (s *Service) newID() string {
	return s.deps.RunID + "-" + strconv.FormatUint(s.seq.Add(1), 10)
}

// SetPersistent says whether the state folder is this daemon's (it holds
// its lock, on cctvd's disk): the outbox is read from and written to its
// file only then, and kept in memory meanwhile.
func (s *Service) SetPersistent(ok bool) {
	s.persistent.Store(ok)
	select {
	case s.pwake <- struct{}{}:
	default:
	}
}

// Report hands the service a fact. It never blocks: beyond QueueLimit
// waiting facts the oldest is dropped, counted and warned once per
// episode.
func (s *Service) Report(f Fact) {
	s.qmu.Lock()
	if len(s.queue) >= s.cfg.QueueLimit {
		s.queue = s.queue[1:]
		s.qdropped++
		if !s.dropping {
			s.dropping = true
			s.log.Warn().Int("limit", s.cfg.QueueLimit).Msg("too many facts wait for the alerts: dropping the oldest (counted in GET /api/v1/alerts, queue.dropped)")
		}
	}
	s.queue = append(s.queue, f)
	s.qmu.Unlock()
	select {
	case s.qwake <- struct{}{}:
	default:
	}
}

func (s *Service) takeFacts() []Fact {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	q := s.queue
	s.queue = nil
	if len(q) == 0 {
		s.dropping = false
	}
	return q
}

// Test sends a test event to every target and returns it with the names
// of the targets.
func (s *Service) Test() (Event, []string, error) {
	if len(s.deps.Targets) == 0 {
		return Event{}, nil, ErrNoTargets
	}
	ev := Event{ID: s.newID(), Type: Test, State: Once, Severity: Info, Time: s.clock.Now(),
		Message: "A test of cctvd's alerts from " + s.cfg.Host + ", sent by POST /api/v1/alerts/test."}
	ev, names := s.emit(context.Background(), ev, Observation{})
	return ev, names, nil
}

// Stopping records daemon-stop in the outbox and writes it while the state
// folder is still this daemon's; it waits at most timeout. Call it before
// the state folder is let go. Run delivers it in its StopGrace.
func (s *Service) Stopping(timeout time.Duration) {
	if !s.runStart.Load() {
		return
	}
	done := make(chan struct{})
	select {
	case s.stopReq <- done:
	case <-s.runDone:
		return
	case <-time.After(timeout):
		return
	}
	select {
	case <-done:
	case <-s.runDone:
	case <-time.After(timeout):
	}
}

// Run observes, raises and delivers until ctx ends; then it emits
// daemon-stop (unless Stopping did), gives deliveries StopGrace, writes
// the outbox and returns once every goroutine it started has stopped.
func (s *Service) Run(ctx context.Context) error {
	s.runStart.Store(true)
	defer close(s.runDone)
	runCtx, stopRunners := context.WithCancel(context.WithoutCancel(ctx))
	var runners sync.WaitGroup
	for _, t := range s.deps.Targets {
		if r, ok := t.(Runner); ok {
			runners.Go(func() {
				if err := r.Run(runCtx); err != nil {
					s.log.Error().Err(err).Str("target", t.Name()).Msg("alert target stopped")
				}
			})
		}
	}
	defer func() { stopRunners(); runners.Wait() }()

	// daemon-start says how the last run ended, which the outbox knows:
	// give the state folder a moment to become readable.
	prev := "unknown"
	wait := s.clock.After(s.cfg.StartWait)
	for !s.persistent.Load() {
		select {
		case <-s.pwake:
			continue
		case <-wait:
		case <-ctx.Done():
		}
		break
	}
	if p, ok := s.load(); ok {
		prev = p
	}
	start := Event{ID: s.newID(), Type: DaemonStart, State: Once, Severity: Info, Time: s.clock.Now(), Details: &Details{PreviousStop: prev}}
	start.Message = fmt.Sprintf("cctvd %s started on %s", s.cfg.Version, s.cfg.Host)
	switch prev {
	case "clean":
		start.Message += "; its previous run stopped cleanly."
	case "unclean":
		start.Message += "; its previous run did not stop cleanly (killed, crashed or a power cut)."
	default:
		start.Message += "."
	}
	s.emit(ctx, start, Observation{})

	deliverCtx, stopDeliveries := context.WithCancel(context.WithoutCancel(ctx))
	var loops sync.WaitGroup
	for _, t := range s.deps.Targets {
		loops.Go(func() { s.deliverLoop(deliverCtx, t) })
	}

	for ctx.Err() == nil {
		s.step(ctx)
		select {
		case <-ctx.Done():
		case <-s.clock.After(s.cfg.Poll):
		case <-s.qwake:
		case <-s.pwake:
		case <-s.outbox.Changed():
		case done := <-s.stopReq:
			s.stop()
			close(done)
		}
	}

	s.stop()
	grace := s.clock.After(s.cfg.StopGrace)
	for {
		if pending, _ := s.outbox.Waiting(); pending == 0 {
			break
		}
		s.save()
		select {
		case <-grace:
		case <-s.outbox.Changed():
			continue
		}
		break
	}
	stopDeliveries()
	loops.Wait()
	s.save()
	return nil
}

// step observes once: facts, conditions, gathered facts, the outbox's
// file, the state sinks.
func (s *Service) step(ctx context.Context) {
	if s.persistent.Load() && !s.outbox.Loaded() {
		s.load()
	}
	mono, wall := s.clock.Mono(), s.clock.Now()
	for _, f := range s.takeFacts() {
		for _, ev := range s.tracker.Fact(mono, wall, f) {
			s.emit(ctx, ev, Observation{})
		}
	}
	var o Observation
	if s.deps.Observe != nil {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		o = s.deps.Observe(octx)
		cancel()
		for _, ev := range s.tracker.Observe(mono, wall, o) {
			s.emit(ctx, ev, o)
		}
	}
	for _, ev := range s.tracker.Tick(mono, wall) {
		s.emit(ctx, ev, o)
	}
	open := s.tracker.Open()
	s.vmu.Lock()
	changed := !equalOpen(open, s.open)
	s.open, s.lastObs = open, o
	s.vmu.Unlock()
	if changed {
		s.outbox.SetOpen(open)
	}
	s.save()
	snap := s.snapshot(o, wall)
	for _, t := range s.deps.Targets {
		if sink, ok := t.(StateSink); ok {
			sink.SetState(snap)
		}
	}
}

// stop emits daemon-stop once, marks the run's clean stop and writes the
// outbox.
func (s *Service) stop() {
	if s.stopped.Swap(true) {
		return
	}
	ev := Event{ID: s.newID(), Type: DaemonStop, State: Once, Severity: Info, Time: s.clock.Now(),
		Message: "cctvd stopped on " + s.cfg.Host + "."}
	s.emit(context.Background(), ev, Observation{})
	s.outbox.SetCleanStop(true)
	s.save()
}

// load reads the outbox's file when the state folder is this daemon's;
// it returns how the previous run stopped.
func (s *Service) load() (string, bool) {
	if !s.persistent.Load() || s.outbox.Loaded() {
		return "", false
	}
	var names []string
	for _, t := range s.deps.Targets {
		names = append(names, t.Name())
	}
	open, hadFile, clean, err := s.outbox.Load(names, s.clock.Now())
	if err != nil {
		s.log.Error().Err(err).Msg("alerts outbox")
	}
	if !s.outbox.Loaded() {
		return "", false
	}
	s.tracker.Restore(open)
	s.outbox.SetCleanStop(false) // until this run stops cleanly
	if !hadFile {
		return "unknown", true
	}
	if clean {
		return "clean", true
	}
	return "unclean", true
}

// save writes the outbox when the state folder is this daemon's.
func (s *Service) save() {
	if !s.persistent.Load() || !s.outbox.Loaded() {
		return
	}
	if err := s.outbox.Save(); err != nil {
		s.log.Error().Err(err).Msg("the alerts outbox is kept in memory only until it can be written")
	}
}

// emit completes an event (schema, box, masking, camera-up's gap), puts
// it in the outbox for every target that wants it, and logs it. It
// returns the event and those targets' names.
func (s *Service) emit(ctx context.Context, ev Event, o Observation) (Event, []string) {
	ev.Schema, ev.Host, ev.Version = Schema, s.cfg.Host, s.cfg.Version
	ev.Time = ev.Time.UTC()
	if ev.Type == CameraUp {
		s.enrichUp(ctx, &ev, o)
	}
	ev.Message = s.deps.Redact(ev.Message)
	if ev.Details != nil {
		ev.Details.LastError = s.deps.Redact(ev.Details.LastError)
	}
	body, err := json.Marshal(ev)
	if err != nil { // plain data: cannot happen
		s.log.Error().Err(err).Msg("cannot encode an alert")
		return ev, nil
	}
	var names []string
	for _, t := range s.deps.Targets {
		if ev.Type == Test || t.Wants(ev.Type) {
			names = append(names, t.Name())
		}
	}
	if n := s.outbox.Add(ev, body, names); n > 0 {
		s.log.Warn().Int("dropped", n).Int("limit", s.cfg.MaxEvents).
			Msg("the alerts outbox is full of events still waiting for delivery: the oldest were dropped")
	}
	lvl := zerolog.InfoLevel
	if ev.Severity != Info {
		lvl = zerolog.WarnLevel
	}
	s.log.WithLevel(lvl).Str("alert", string(ev.Type)).Str("id", ev.ID).Str("state", string(ev.State)).
		Str("camera", ev.Camera).Strs("targets", names).Msg(ev.Message)
	return ev, names
}

// enrichUp gives a camera-up the gap it ends: how long the camera was
// without footage and the gap log's cause.
func (s *Service) enrichUp(ctx context.Context, ev *Event, o Observation) {
	d := Details{}
	if ev.Details != nil {
		d = *ev.Details
	}
	var cam CameraObservation
	for _, c := range o.Cameras {
		if c.Name == ev.Camera {
			cam = c
		}
	}
	back := cam.RecordingSince
	if back.IsZero() {
		back = ev.Time
	}
	raisedAt := ev.Time.Add(-time.Duration(d.OpenSeconds * float64(time.Second)))
	d.ExitReason = cam.ExitReason
	var gap GapInfo
	var found bool
	if s.deps.Gap != nil {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		gap, found = s.deps.Gap(gctx, ev.Camera, raisedAt)
		cancel()
	}
	if found {
		d.Cause, d.GapStart = gap.Cause, timePtr(gap.Start)
		d.DownSeconds = seconds(back.Sub(gap.Start))
	} else {
		d.Cause = "unknown"
		d.DownSeconds = seconds(back.Sub(raisedAt) + s.cfg.CameraDownAfter)
	}
	ev.Details = &d
	ev.Message = fmt.Sprintf("Camera %s records again after %s without footage (cause: %s).", ev.Camera,
		round(time.Duration(d.DownSeconds*float64(time.Second))), d.Cause)
}

// snapshot is the state sinks' view of o.
func (s *Service) snapshot(o Observation, now time.Time) Snapshot {
	snap := Snapshot{BacklogKnown: o.BacklogKnown, BacklogSegments: o.BacklogSegments, BacklogBytes: o.BacklogBytes,
		StorageKnown: o.StorageKnown, UsedBytes: o.UsedBytes, LimitBytes: o.LimitBytes, FreeBytes: o.FreeBytes}
	if o.BacklogSegments > 0 && !o.BacklogOldest.IsZero() {
		snap.BacklogOldestSeconds = seconds(now.Sub(o.BacklogOldest))
	}
	for _, c := range o.Cameras {
		cs := CameraStatus{Name: c.Name}
		switch {
		case !c.Desired:
			cs.Status = StatusStopped
		case o.Disk != DiskOK && o.Disk != DiskChecking && o.Disk != "":
			cs.Status = StatusWaitingDisk
		case c.Recording:
			cs.Status = StatusRecording
		case s.tracker.Raised(CameraDown, c.Name):
			cs.Status = StatusDown
		}
		snap.Cameras = append(snap.Cameras, cs)
	}
	return snap
}

func equalOpen(a, b []OpenCondition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID {
			return false
		}
	}
	return true
}
