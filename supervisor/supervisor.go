// Package supervisor runs one ffmpeg per camera and keeps it running.
//
// Each camera's ffmpeg pulls the stream and records it at the configured
// frame rate and resolution, cut into videoDuration segments, into the
// camera's staging folder (see package staging). The supervisor restarts
// ffmpeg after every exit, code 0 included, with exponential backoff and
// jitter; a watchdog on ffmpeg's -progress output restarts a stream that
// stops advancing; a stop finalises the open segment. Every camera has a
// state (starting, recording, backoff, stalled, stopped) that the API reads,
// and every change is reported as an Event.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/discovery"
	"github.com/cctvd/cctvd/internal/loginbudget"
	"github.com/cctvd/cctvd/internal/redact"
)

// Config holds what every camera's supervision shares.
type Config struct {
	// SavePath is the recordings folder; staging folders are inside it.
	SavePath string
	// Owner identifies this daemon process in run metadata.
	Owner string
	// FFmpegPath is the ffmpeg binary, ProbePath ffprobe.
	FFmpegPath, ProbePath string
	// Preset is libx264's preset.
	Preset string
	// StallTimeout: no progress for this long restarts ffmpeg.
	StallTimeout time.Duration
	// StopTimeout: how long ffmpeg gets to exit after SIGINT or SIGTERM
	// before SIGKILL.
	StopTimeout time.Duration
	// HealthyAfter: a run that recorded this long resets the backoff.
	// Default one minute.
	HealthyAfter time.Duration
	// BackoffInitial and BackoffMax bound the pause between restarts.
	// Defaults 1s and 60s.
	BackoffInitial, BackoffMax time.Duration
	// BackoffMaxTransient caps the pause after failures that end by
	// themselves (camera down, stall, exit), so recording resumes soon after
	// the camera returns. Default 10s. Auth and path errors use BackoffMax.
	BackoffMaxTransient time.Duration
	// DiscoveryAuthPause is the least pause after discovery met a refused
	// password (each discovery may fail a login twice: ONVIF, RTSP).
	// Default 5 minutes.
	DiscoveryAuthPause time.Duration
}

// setDefaults guards against zero values: the supervision's own timings get
// their defaults here; the settings of the config file get the product's
// (package config).
func (c *Config) setDefaults() {
	if c.HealthyAfter == 0 {
		c.HealthyAfter = time.Minute
	}
	if c.BackoffInitial == 0 {
		c.BackoffInitial = time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = time.Minute
	}
	if c.BackoffMaxTransient == 0 {
		c.BackoffMaxTransient = 10 * time.Second
	}
	if c.DiscoveryAuthPause == 0 {
		c.DiscoveryAuthPause = 5 * time.Minute
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = config.DefaultStallTimeout
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = config.DefaultStopTimeout
	}
	if c.Preset == "" {
		c.Preset = config.DefaultPreset
	}
	if c.FFmpegPath == "" {
		c.FFmpegPath = config.DefaultFFmpegPath
	}
	if c.ProbePath == "" {
		c.ProbePath = config.DefaultProbePath
	}
}

// Deps are the supervisor's collaborators.
type Deps struct {
	Log zerolog.Logger
	// Redactor masks secrets in ffmpeg's output and in error messages.
	Redactor *redact.Redactor
	// Now is the wall clock (names, states' times); time.Now by default.
	Now func() time.Time
	// Mono is a clock that never steps, for the stall watchdog and the
	// stream's epoch; by default the monotonic reading of Now's times.
	Mono func() time.Duration
	// After waits on the clock that never steps; time.After by default.
	After func(time.Duration) <-chan time.Time
	// OnEvent, if set, is called for every camera event. It must not block.
	OnEvent func(Event)
	// SaveStopped, if set, persists an operator's start or stop before it
	// is carried out, so that it survives a restart.
	SaveStopped func(camera string, stopped bool) error
	// Finder finds the streams of cameras without a path. Default: package
	// discovery at its default pace, one for every camera.
	Finder StreamFinder
	// Streams, if set, remembers found streams across restarts.
	Streams StreamStore
	// Probes, if set, remembers mode auto's decisions and what ffmpeg can
	// start on across restarts (probes.go).
	Probes ProbeStore
	// Gate, if set, is asked before each ffmpeg start; an error holds the
	// start, and the camera waits as after a failed start. The daemon checks
	// there that savePath is still its recordings disk, so that an ffmpeg
	// restarted after its disk vanished never records onto the filesystem
	// under the mount point. An error wrapping ErrStorageUnavailable is
	// reported with ReasonStorage.
	Gate func() error
	// Logins is the failed-login budget: every login to a camera (ffmpeg's
	// runs, ffprobe's probes, and the default Finder's ONVIF calls and
	// DESCRIBEs) is taken from it, so that together they stay under each
	// camera's maxFailedLogins within failedLoginWindow at its address.
	// Default: one of the supervisor's own, on Mono (a Finder given in
	// Finder should take its logins from the same budget).
	Logins *loginbudget.Budget
	// Frames, if set, receives every camera's activity feed (see Frame),
	// from the goroutine that reads it. It must not block: ffmpeg never
	// waits on the feed. Without it ffmpeg makes no feed.
	Frames func(Frame)
}

// ErrUnknownCamera is returned for a camera name that is not configured.
var ErrUnknownCamera = errors.New("unknown camera")

// Supervisor supervises every configured camera; Apply changes the set
// while it runs.
type Supervisor struct {
	deps Deps

	stalls *stallWatch

	mu      sync.Mutex
	cfg     Config
	cameras map[string]*handle
	runCtx  context.Context // set by Run
	wg      sync.WaitGroup
}

// handle is a camera and its supervising goroutines: its main feed's run,
// and its sub feed's when it has a subStream (a second run of its own,
// started, stopped and reconfigured with the main).
type handle struct {
	cam    *Camera
	sub    *Camera // nil without a subStream
	cancel context.CancelCauseFunc
	// cancels end one run each, aligned with runs(): a handover ends each
	// old feed when its new one took over.
	cancels []context.CancelCauseFunc
	done    chan struct{}

	// The activity feed during a handover: the tracker follows one run of
	// a camera at a time, so the old handle's frames stop (muted) once the
	// new one's first frame comes (replaces is the old handle until then).
	muted    atomic.Bool
	replaces atomic.Pointer[handle]
}

// newHandle makes the runs of one configured camera.
func newHandle(cfg config.Camera, opts Config, deps Deps, stalls *stallWatch, desired bool) *handle {
	h := &handle{}
	if next := deps.Frames; next != nil {
		deps.Frames = func(f Frame) {
			if f.End {
				next(f) // always: the tracker ends the run
				return
			}
			if h.muted.Load() {
				return // replaced: the new handle's runs are the camera's feed
			}
			if old := h.replaces.Swap(nil); old != nil {
				old.muted.Store(true)
			}
			next(f)
		}
	}
	h.cam = newCamera(cfg, opts, deps, stalls, desired)
	if sub, ok := cfg.SubCamera(); ok {
		h.sub = newCamera(sub, opts, deps, stalls, desired)
	}
	return h
}

// runs are the handle's cameras: the main feed's, then the sub feed's.
func (h *handle) runs() []*Camera {
	if h.sub != nil {
		return []*Camera{h.cam, h.sub}
	}
	return []*Camera{h.cam}
}

// recording says whether a feed of the handle is recording: then a change
// of its config hands over (see Apply) instead of leaving a hole.
func (h *handle) recording() bool {
	if !h.cam.desired() {
		return false
	}
	for _, c := range h.runs() {
		if c.Status().State == Recording {
			return true
		}
	}
	return false
}

// New returns a Supervisor for cams. Cameras named in stopped start in the
// stopped state (an operator stopped them before the daemon restarted).
func New(cfg Config, cams []config.Camera, stopped map[string]bool, deps Deps) *Supervisor {
	cfg.setDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.After == nil {
		deps.After = time.After
	}
	if deps.Mono == nil {
		// time.Now's readings carry the monotonic clock, which Sub uses.
		now, base := deps.Now, deps.Now()
		deps.Mono = func() time.Duration { return now().Sub(base) }
	}
	if deps.Logins == nil {
		deps.Logins = loginbudget.New(deps.Mono)
	}
	if deps.Finder == nil {
		deps.Finder = DiscoveryFinder(discovery.New(discovery.Config{Logins: deps.Logins}))
	}
	s := &Supervisor{cfg: cfg, deps: deps, cameras: make(map[string]*handle, len(cams)), stalls: newStallWatch(deps.Mono, deps.After)}
	for _, cam := range cams {
		s.cameras[cam.CameraName] = newHandle(cam, cfg, deps, s.stalls, !stopped[cam.CameraName])
	}
	return s
}

// Restore sets which cameras an operator stopped, as read back from where
// those choices are kept, without saving them again (SaveStopped is not
// called). Call it while Run is not running: before it, or between two runs.
func (s *Supervisor) Restore(stopped map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, h := range s.cameras {
		want := !stopped[name]
		for _, c := range h.runs() {
			c.update(func(st *Status) { st.Desired = want })
		}
	}
}

// Run supervises every camera until ctx ends, then stops every ffmpeg
// gracefully (each finalises its segment) and returns once all have exited.
// It may run again after it returned (the daemon stops recording while
// savePath's disk is missing, and starts again when it is back).
func (s *Supervisor) Run(ctx context.Context) error {
	// The stall watch outlives ctx until every camera has stopped: an
	// ffmpeg that hangs while others finalise is still caught.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var watchWG sync.WaitGroup
	watchWG.Go(func() { s.stalls.run(watchCtx) })
	defer watchWG.Wait()
	defer stopWatch()
	s.mu.Lock()
	s.runCtx = ctx
	for _, h := range s.cameras {
		s.startLocked(h)
	}
	s.mu.Unlock()
	<-ctx.Done()
	// Under the lock once more: an Apply that started a camera (wg.Add,
	// from zero when it had restarted the only one) happens before the
	// Wait, and none starts one after it (it sees ctx done).
	s.mu.Lock()
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// startLocked starts a camera's goroutine; s.mu must be held and Run started.
func (s *Supervisor) startLocked(h *handle) {
	cctx, cancel := context.WithCancelCause(s.runCtx)
	runs := h.runs()
	h.cancel, h.done, h.cancels = cancel, make(chan struct{}), make([]context.CancelCauseFunc, len(runs))
	ctxs := make([]context.Context, len(runs))
	for i := range runs {
		ctxs[i], h.cancels[i] = context.WithCancelCause(cctx)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(h.done)
		defer cancel(nil)
		var wg sync.WaitGroup
		for i, c := range runs {
			wg.Go(func() {
				if err := c.Run(ctxs[i]); err != nil {
					c.log.Error().Err(err).Msg("camera supervision ended")
				}
			})
		}
		wg.Wait()
	}()
}

// Applied says what Apply changed.
type Applied struct {
	Added, Removed, Changed []string
}

// Apply makes the supervisor record cams with cfg: cameras no longer listed
// stop (their last segment finalised) and go; changed ones (their config or
// the shared ffmpeg settings differ) restart with the new config; new ones
// start, unless stopped says an operator stopped them; unchanged ones are
// not touched.
//
// A changed camera that is recording hands over without a hole (make
// before break): its new runs start while the old ones still record, and
// each old feed stops once its new one took over (see tookOver), or after
// StallTimeout, whichever comes first. Meanwhile the camera's status is the
// new runs'; the footage of the two overlaps by a few seconds. A changed
// camera that records nothing (stopped by an operator, waiting, in
// backoff), or any change while Run is not running, stops at once as a
// removed one does.
//
// It returns once the stopped ffmpegs have exited: the removed cameras',
// and the changed cameras' old ones (after their handover).
func (s *Supervisor) Apply(cams []config.Camera, cfg Config, stopped map[string]bool) Applied {
	cfg.setDefaults()
	s.mu.Lock()
	shared := cameraSettings(s.cfg) != cameraSettings(cfg)
	s.cfg = cfg
	running := s.runCtx != nil && s.runCtx.Err() == nil
	var res Applied
	want := map[string]config.Camera{}
	for _, c := range cams {
		want[c.CameraName] = c
	}
	var stopping []*handle
	handing := map[string]*handle{} // changed cameras that hand over: their old handles
	for name, h := range s.cameras {
		c, keep := want[name]
		switch {
		case !keep:
			res.Removed = append(res.Removed, name)
		case shared || !reflect.DeepEqual(c, h.cam.Config()):
			res.Changed = append(res.Changed, name)
		default:
			continue
		}
		if h.cancel == nil {
			continue // never started
		}
		if keep && running && h.recording() {
			handing[name] = h
			continue
		}
		cause := errReconfigured
		if !keep {
			cause = errRemoved
		}
		h.cancel(cause)
		stopping = append(stopping, h)
	}
	s.mu.Unlock()
	for _, h := range stopping {
		<-h.done
	}

	s.mu.Lock()
	for _, name := range res.Removed {
		delete(s.cameras, name)
	}
	for _, name := range res.Changed {
		oh := s.cameras[name]
		old := oh.cam
		h := newHandle(want[name], cfg, s.deps, s.stalls, old.desired())
		for _, cam := range h.runs() {
			was := old.creds
			if cam.cfg.IsSub() {
				was = credentials{} // a sub feed new to the camera: new too
				if oh.sub != nil {
					was = oh.sub.creds
				}
			}
			if cam.creds.ok && cam.creds != was {
				// New credentials: their first login goes at once, even
				// when the old ones spent the budget (and counts if
				// refused).
				s.deps.Logins.Grant(cam.creds.host, cam.creds.key)
			}
		}
		s.cameras[name] = h
	}
	for _, c := range cams {
		if _, ok := s.cameras[c.CameraName]; !ok {
			res.Added = append(res.Added, c.CameraName)
			s.cameras[c.CameraName] = newHandle(c, cfg, s.deps, s.stalls, !stopped[c.CameraName])
		}
	}
	var handovers []chan struct{}
	if s.runCtx != nil && s.runCtx.Err() == nil {
		for _, name := range append(res.Changed, res.Added...) {
			h := s.cameras[name]
			old := handing[name]
			if old != nil {
				h.replaces.Store(old)
			}
			s.startLocked(h)
			if old != nil {
				done := make(chan struct{})
				handovers = append(handovers, done)
				s.wg.Add(1) // Run returns once the old ffmpegs exited too
				go func() {
					defer s.wg.Done()
					defer close(done)
					s.handOver(old, h, cfg.StallTimeout)
				}()
			}
		}
	} else {
		// Run ended between the two locks: its context stopped the old
		// runs; nothing hands over.
		for _, old := range handing {
			old.cancel(errReconfigured)
			stopping = append(stopping, old)
		}
	}
	s.mu.Unlock()
	for _, done := range handovers {
		<-done
	}
	for _, h := range stopping {
		<-h.done
	}
	sort.Strings(res.Added)
	sort.Strings(res.Removed)
	sort.Strings(res.Changed)
	return res
}

// handOver stops old's runs as next's take over: each old feed once the
// new feed of the same name took over (tookOver) or after bound; a feed
// next does not have at once. It returns once old's ffmpegs have exited.
// A shutdown ends both handles' runs through Run's context.
func (s *Supervisor) handOver(old, next *handle, bound time.Duration) {
	var wg sync.WaitGroup
	for i, oc := range old.runs() {
		cancel := old.cancels[i]
		var nc *Camera
		for _, c := range next.runs() {
			if c.cfg.Feed == oc.cfg.Feed {
				nc = c
			}
		}
		if nc == nil {
			cancel(errReconfigured) // the new config has no such feed
			continue
		}
		wg.Go(func() {
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			go func() {
				select {
				case <-s.deps.After(bound):
					oc.log.Warn().Dur("after", bound).Msg("reload: the new run has not taken over; stopping the old one all the same")
				case <-next.done: // shut down, or the new runs ended
				case <-ctx.Done():
				}
				stop()
			}()
			_ = nc.WaitFor(ctx, tookOver) // ends with ctx otherwise
			cause := errReconfigured
			if !nc.desired() {
				cause = errStopped // an operator stopped the camera meanwhile
			}
			oc.log.Info().Str("state", string(nc.Status().State)).Msg("reload: handing over to the new run")
			cancel(cause)
		})
	}
	wg.Wait()
	<-old.done
}

// tookOver says whether a new run's status ends the handover: it records,
// or it failed or stopped before recording (the old run would only hide
// it). A camera made by Apply is Stopped with no run yet: that is not it.
func tookOver(st Status) bool {
	switch st.State {
	case Recording, Backoff, WaitingCredentials, Stalled:
		return true
	case Stopped:
		return st.RunID != "" || st.LastExit != nil || !st.Desired
	}
	return false
}

// cameraSettings are the shared settings whose change restarts every camera.
func cameraSettings(c Config) [5]string {
	return [5]string{c.FFmpegPath, c.ProbePath, c.Preset, c.StallTimeout.String(), c.StopTimeout.String()}
}

// Camera returns the named camera.
func (s *Supervisor) Camera(name string) (*Camera, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.cameras[name]
	if !ok {
		return nil, fmt.Errorf("camera %q: %w", name, ErrUnknownCamera)
	}
	return h.cam, nil
}

// Sub returns the named camera's sub feed; ok is false for a camera
// without a subStream.
func (s *Supervisor) Sub(name string) (cam *Camera, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, found := s.cameras[name]
	if !found || h.sub == nil {
		return nil, false
	}
	return h.sub, true
}

// SubStatus returns the named camera's sub feed's status; ok is false for
// a camera without a subStream.
func (s *Supervisor) SubStatus(name string) (Status, bool) {
	c, ok := s.Sub(name)
	if !ok {
		return Status{}, false
	}
	return c.Status(), true
}

// feeds returns the named camera's runs.
func (s *Supervisor) feeds(name string) ([]*Camera, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.cameras[name]
	if !ok {
		return nil, fmt.Errorf("camera %q: %w", name, ErrUnknownCamera)
	}
	return h.runs(), nil
}

// CameraConfig returns one camera's configuration.
func (s *Supervisor) CameraConfig(name string) (config.Camera, error) {
	c, err := s.Camera(name)
	if err != nil {
		return config.Camera{}, err
	}
	return c.Config(), nil
}

// Status returns one camera's status.
func (s *Supervisor) Status(name string) (Status, error) {
	c, err := s.Camera(name)
	if err != nil {
		return Status{}, err
	}
	return c.Status(), nil
}

// Start is an operator's start: saved, then carried out. Idempotent.
func (s *Supervisor) Start(name string) error {
	runs, err := s.feeds(name)
	if err != nil {
		return err
	}
	if s.deps.SaveStopped != nil {
		if err := s.deps.SaveStopped(name, false); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
	}
	for _, c := range runs {
		c.Start()
	}
	return nil
}

// ErrStopped is returned by Retry for a camera an operator stopped.
var ErrStopped = errors.New("the camera is stopped: start it")

// Retry is an operator's "Retry now": a camera waiting for its
// credentials (or in backoff) tries at once, its next login going past the
// failed-login budget once (a refused one counts: cameras lock out after
// about five). It returns at once.
func (s *Supervisor) Retry(name string) error {
	runs, err := s.feeds(name)
	if err != nil {
		return err
	}
	if !runs[0].desired() {
		return fmt.Errorf("camera %q: %w", name, ErrStopped)
	}
	for _, c := range runs {
		c.Retry()
	}
	return nil
}

// Stop is an operator's stop: saved, then carried out; it returns once
// ffmpeg has finalised its segment and exited, or ctx ends. Idempotent.
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	runs, err := s.feeds(name)
	if err != nil {
		return err
	}
	if s.deps.SaveStopped != nil {
		if err := s.deps.SaveStopped(name, true); err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
	}
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, c := range runs {
		wg.Go(func() { errs[i] = c.Stop(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// WaitFor returns once cond holds for the camera's status, or ctx ends.
func (s *Supervisor) WaitFor(ctx context.Context, name string, cond func(Status) bool) error {
	c, err := s.Camera(name)
	if err != nil {
		return err
	}
	return c.WaitFor(ctx, cond)
}

// Statuses returns every camera's status, sorted by name.
func (s *Supervisor) Statuses() []Status {
	cams := s.list()
	out := make([]Status, len(cams))
	for i, c := range cams {
		out[i] = c.Status()
	}
	return out
}

func (s *Supervisor) list() []*Camera {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Camera, 0, len(s.cameras))
	for _, h := range s.cameras {
		out = append(out, h.cam)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}
