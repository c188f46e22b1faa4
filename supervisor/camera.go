package supervisor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/watch"
	"github.com/cctvd/cctvd/layout"
)

// StateName is where a camera is in its life cycle.
type StateName string

// The camera states.
const (
	// Starting: ffmpeg runs but has not written a frame yet (connecting,
	// probing the stream).
	Starting StateName = "starting"
	// Recording: frames are being written.
	Recording StateName = "recording"
	// Backoff: ffmpeg exited and the camera waits before the next attempt.
	Backoff StateName = "backoff"
	// Stalled: no frame for the stall timeout; ffmpeg is being stopped.
	Stalled StateName = "stalled"
	// Stopped: not recording, by an operator's stop or at shutdown.
	Stopped StateName = "stopped"
)

// ExitReason classifies why an ffmpeg run ended.
type ExitReason string

// The exit reasons.
const (
	ReasonStopped      ExitReason = "stopped"      // operator stop or daemon shutdown
	ReasonReconfigured ExitReason = "reconfigured" // a config reload removed or changed the camera
	ReasonStalled      ExitReason = "stalled"      // the watchdog saw no progress
	ReasonAuth         ExitReason = "auth"         // 401/403 from the camera
	ReasonNotFound     ExitReason = "not-found"    // 404: wrong stream path
	ReasonUnreachable  ExitReason = "unreachable"  // refused, timed out, no route
	ReasonExited       ExitReason = "exited"       // any other exit, code 0 included
	ReasonStartFailed  ExitReason = "start-failed" // ffmpeg could not be started
	ReasonStorage      ExitReason = "storage"      // savePath's disk went missing (ErrStorageUnavailable)
)

// Exit describes how one ffmpeg run ended.
type Exit struct {
	RunID string    `json:"runId"`
	At    time.Time `json:"at"`
	// Code is ffmpeg's exit code, -1 when a signal killed it.
	Code   int        `json:"code"`
	Signal string     `json:"signal,omitempty"`
	Reason ExitReason `json:"reason"`
	// Message says what happened, with secrets masked.
	Message string `json:"message"`
	// Recorded is how long the run was recording before it ended.
	Recorded time.Duration `json:"recorded"`
}

// Status is a camera's live state, as the API shows it.
type Status struct {
	Camera string `json:"camera"`
	// Feed is "sub" for a camera's sub feed (its second run), empty for
	// its main feed; FeedID is the sub feed's videoFeedId.
	Feed   string    `json:"feed,omitempty"`
	FeedID string    `json:"feedId,omitempty"`
	State  StateName `json:"state"`
	Since  time.Time `json:"since"`
	// Desired is true when the camera should record (not stopped by an
	// operator).
	Desired bool   `json:"desired"`
	PID     int    `json:"pid,omitempty"`
	RunID   string `json:"runId,omitempty"`
	// Restarts counts ffmpeg restarts after an exit that was not a stop.
	Restarts int `json:"restarts"`
	// Stalls counts runs ended by the stall watchdog.
	Stalls int `json:"stalls"`
	// RecordingSince is when the current run began writing frames.
	RecordingSince time.Time `json:"recordingSince,omitzero"`
	// LastError is the last failure's message (masked), cleared once the
	// camera records again.
	LastError string `json:"lastError,omitempty"`
	LastExit  *Exit  `json:"lastExit,omitempty"`
	// NextAttempt is when a camera in backoff tries again.
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	// Progress is ffmpeg's latest progress block in the current run.
	Progress *Progress `json:"progress,omitempty"`
	// Mode is how the current (or last) run records: copy or transcode.
	Mode string `json:"mode,omitempty"`
	// Source says where the stream comes from: "configured", or what
	// discovery found (`onvif profile "mainStream"`, `known path
	// /Streaming/Channels/101`). StreamURL is its URL, password masked.
	Source    string `json:"source,omitempty"`
	StreamURL string `json:"streamUrl,omitempty"`
	// DiscoveryError is why the last discovery found nothing (masked),
	// cleared when a stream is found.
	DiscoveryError string `json:"discoveryError,omitempty"`
	// FailedLogins is how many logins the camera's address refused within
	// its failedLoginWindow, as of the last refusal or wait (all of cctvd's
	// logins there count: ffmpeg, ffprobe, discovery, other cameras);
	// cleared once the camera records.
	FailedLogins int `json:"failedLogins,omitempty"`
}

// EventKind names a camera event.
type EventKind string

// The camera events.
const (
	EventStarted   EventKind = "started"   // ffmpeg started
	EventRecording EventKind = "recording" // the first frame of a run was written
	EventStalled   EventKind = "stalled"   // the watchdog fired
	EventExited    EventKind = "exited"    // ffmpeg exited (Exit says why)
)

// Event reports a change in a camera's life, for metrics and the gap log.
type Event struct {
	Camera string `json:"camera"`
	// Feed is "sub" for an event of the camera's sub feed, empty for its
	// main feed.
	Feed  string    `json:"feed,omitempty"`
	Kind  EventKind `json:"kind"`
	At    time.Time `json:"at"`
	RunID string    `json:"runId"`
	Exit  *Exit     `json:"exit,omitempty"`
}

// Camera supervises one camera's ffmpeg: it starts it, watches its
// progress, restarts it with backoff after every exit, and stops it.
type Camera struct {
	cfg  config.Camera
	opts Config
	deps Deps
	log  zerolog.Logger
	dir  string

	wake chan struct{} // Start and Stop poke the loop

	// Run's goroutine only: how the stream is recorded.
	decision string    // "", "copy" or "transcode", for mode auto
	codec    string    // the stream's codec, when copied
	probed   string    // how ffprobe described the stream (kept with the decision)
	probedAt time.Time // when
	// Run's goroutine only: the probe kept from before (probes.go): read
	// once; known, the stream recorded before under its key (ffmpeg may
	// start with tight probing), unless loose; reprobe, the decision is
	// the kept one, to be confirmed once the run records.
	probeRead, known, loose, reprobe bool
	tightMisses                      int // tight starts in a row that failed before recording
	hwChecked                        bool
	hwErr                            error
	// Run's goroutine only: the discovered stream in use, and whether the
	// remembered one was refused (then it is not read back).
	stream     *Stream
	rediscover bool
	// discoveryRefused: the last discovery ended in a refused password.
	discoveryRefused bool
	// creds: where and with what the camera logs in, for the budget.
	creds credentials
	// Run's goroutine only: the activity feed (framepipe.go).
	frames framesState

	status *watch.Value[Status]
	stalls *stallWatch // the supervisor's stall watchdog, shared by every camera

	mu        sync.Mutex // guards cancelRun, pending, and the watchdog while a run lasts
	cancelRun context.CancelCauseFunc
	// pending is the decision a background probe found for a stream that
	// changed (probes.go): the next run's.
	pending *Probe
}

func newCamera(cfg config.Camera, opts Config, deps Deps, stalls *stallWatch, desired bool) *Camera {
	lc := deps.Log.With().Str("component", "supervisor").Str("camera", cfg.CameraName)
	st := Status{Camera: cfg.CameraName, State: Stopped, Since: deps.Now(), Desired: desired}
	if cfg.IsSub() {
		lc = lc.Str("feed", cfg.Feed)
		st.Feed, st.FeedID = cfg.Feed, cfg.VideoFeedID
	}
	return &Camera{
		stalls: stalls,
		cfg:    cfg,
		opts:   opts,
		deps:   deps,
		log:    lc.Logger(),
		dir:    layout.FeedStagingDir(opts.SavePath, cfg.CameraName, cfg.Feed),
		creds:  credentialsOf(cfg),
		wake:   make(chan struct{}, 1),
		status: watch.New(st),
	}
}

// storeKey is the name the camera's found stream is kept under: the
// camera's, and for its sub feed the sub feed's staging name.
func (c *Camera) storeKey() string { return layout.FeedStagingName(c.cfg.CameraName, c.cfg.Feed) }

// Name is the camera's name.
func (c *Camera) Name() string { return c.cfg.CameraName }

// Config is the camera's configuration.
func (c *Camera) Config() config.Camera { return c.cfg }

// Status returns a copy of the camera's state.
func (c *Camera) Status() Status {
	s := c.status.Get()
	if s.Progress != nil {
		p := *s.Progress
		s.Progress = &p
	}
	return s
}

// Start makes the camera record. It returns at once; a camera waiting in
// backoff tries again now.
func (c *Camera) Start() {
	c.update(func(s *Status) { s.Desired = true })
	c.poke()
}

// Stop stops recording: ffmpeg gets SIGINT and finalises its segment. Stop
// returns once the camera is stopped or ctx ends.
func (c *Camera) Stop(ctx context.Context) error {
	c.mu.Lock() // with runOnce's check of Desired, so no run escapes the stop
	c.update(func(s *Status) { s.Desired = false })
	if c.cancelRun != nil {
		c.cancelRun(errStopped)
	}
	c.mu.Unlock()
	c.poke()
	return c.WaitFor(ctx, func(s Status) bool { return s.State == Stopped })
}

// WaitFor returns once cond holds for the camera's status, or ctx ends.
func (c *Camera) WaitFor(ctx context.Context, cond func(Status) bool) error {
	return c.status.WaitFor(ctx, cond)
}

func (c *Camera) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// update changes the status, dates a change of state and wakes waiters.
func (c *Camera) update(f func(s *Status)) {
	c.status.Update(func(s *Status) {
		before := s.State
		f(s)
		if s.State != before {
			s.Since = c.deps.Now()
		}
	})
}

func (c *Camera) emit(ev Event) {
	ev.Camera = c.cfg.CameraName
	if c.cfg.IsSub() {
		ev.Feed = c.cfg.Feed
	}
	if c.deps.OnEvent != nil {
		c.deps.OnEvent(ev)
	}
}

func (c *Camera) desired() bool { return c.status.Get().Desired }

// Run supervises the camera until ctx ends, then stops ffmpeg gracefully
// and returns once it has exited.
func (c *Camera) Run(ctx context.Context) error {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     c.opts.BackoffInitial,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         c.opts.BackoffMax,
	}
	b.Reset()
	failed := false // the previous run ended in a failure: the next is a restart
	for {
		if ctx.Err() != nil {
			if st := c.status.Get().State; errors.Is(context.Cause(ctx), ErrStorageUnavailable) && c.desired() &&
				(st == Backoff || st == WaitingCredentials) {
				// Waiting between runs when the disk went: no ffmpeg to
				// stop says so, and the gap already open (an ffmpeg that
				// failed writing as the disk went) is the disk's.
				c.held("", ErrStorageUnavailable)
			}
			c.update(func(s *Status) { s.State, s.NextAttempt = Stopped, time.Time{} })
			return nil
		}
		if !c.desired() {
			c.update(func(s *Status) { s.State, s.PID, s.NextAttempt, s.Progress = Stopped, 0, time.Time{}, nil })
			failed = false
			select {
			case <-ctx.Done():
			case <-c.wake:
			}
			continue
		}
		if se, changed := c.spent(); se != nil {
			// The logins this run would make may not go: the camera
			// waits for its credentials (a Start does not pass the
			// budget; a Retry or new credentials do).
			c.waitCredentials(ctx, se, changed)
			continue
		}
		c.update(func(s *Status) { s.NextAttempt = time.Time{} }) // the wait, if any, is over: it tries now
		if failed {
			c.update(func(s *Status) { s.Restarts++ })
		}
		exit, se := c.runOnce(ctx)
		if se != nil {
			continue // a login of the run found the budget spent: wait above
		}
		if exit.Reason == ReasonStopped || exit.Reason == ReasonReconfigured || (exit.Reason == ReasonStorage && ctx.Err() != nil) {
			failed = false
			continue
		}
		failed = true
		if exit.Recorded >= c.opts.HealthyAfter {
			b.Reset()
		}
		pause := b.NextBackOff()
		if exit.Reason != ReasonAuth && exit.Reason != ReasonNotFound && pause > c.opts.BackoffMaxTransient {
			// A camera that is down comes back by itself: keep trying often
			// enough to resume within seconds. Wrong credentials or paths
			// need a person, and many cameras lock out an address that
			// keeps failing to log in: for those, back off all the way.
			pause = c.opts.BackoffMaxTransient
		}
		if c.discoveryRefused {
			// Discovery's refused logins (ONVIF and RTSP each) count toward
			// the camera's lockout: wait long. A reload with a new password
			// or a start through the API tries at once.
			pause, c.discoveryRefused = max(pause, c.opts.DiscoveryAuthPause), false
		}
		next := c.deps.Now().Add(pause)
		c.update(func(s *Status) { s.State, s.NextAttempt, s.PID = Backoff, next, 0 })
		c.log.Info().Str("reason", string(exit.Reason)).Dur("pause", pause).Msg("restarting ffmpeg after a pause")
		select {
		case <-ctx.Done():
		case <-c.deps.After(pause):
		case <-c.wake: // Start retries now; Stop is seen at the top of the loop
		}
		c.update(func(s *Status) { s.NextAttempt = time.Time{} })
	}
}
