package supervisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/loginbudget"
	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/staging"
)

// runOnce runs ffmpeg once, from start to exit: it claims the run (a Stop
// cancels it), asks the Gate, finds the stream, probes it (mode auto),
// takes ffmpeg's login, writes the run's metadata, starts ffmpeg, follows
// its output until it exits, and reports the exit. Each login
// (discovery's, the probe's, ffmpeg's) is taken from the failed-login
// budget first: when one may not go, the run ends there, unreported, with
// the budget's answer, before any metadata of it is written.
func (c *Camera) runOnce(ctx context.Context) (Exit, *loginbudget.SpentError) {
	started := c.deps.Now()
	a := c.newAttempt(started)
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer c.claimRun(cancel)()

	if c.deps.Gate != nil {
		if err := c.deps.Gate(); err != nil {
			return c.held(a.run.ID, err), nil
		}
	}
	cam, failed, se := c.source(runCtx, a.run.ID)
	switch {
	case se != nil:
		return Exit{}, se
	case failed != nil:
		return *failed, nil
	}
	// Every login is taken before the run's metadata exists: a run that
	// ends here (the budget spent since the loop checked it, the probe
	// refused) leaves nothing in staging that looks like a live run
	// (metadata of this daemon, no pid, not exited: never Ended).
	enc, err := c.encoding(runCtx, cam)
	var refused *probeRefused
	switch {
	case errors.As(err, &se):
		return Exit{}, se
	case errors.As(err, &refused):
		return c.probeRefused(a.run.ID, refused), nil
	}
	a.cam, a.enc, a.row, a.reprobing = cam, enc, c.probeRow(cam), c.reprobe && c.cfg.Mode == config.ModeAuto
	if a.login, err = c.login(); errors.As(err, &se) {
		return Exit{}, se
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		a.login.Release()
		return c.failedStart(a.run.ID, "create staging folder: "+err.Error()), nil
	}
	if err := staging.WriteMeta(a.run.MetaPath(), a.meta); err != nil {
		a.login.Release()
		return c.failedStart(a.run.ID, err.Error()), nil
	}
	// The stall watchdog counts from here: the probe above may take
	// seconds (more on a loaded box), and counting it made every camera
	// "stall" before its first frame could come.
	c.mu.Lock()
	a.wd = newWatchdog(c.opts.StallTimeout, c.deps.Mono())
	c.mu.Unlock()
	// The run's background work (probes.go) ends with the run.
	bg, stopBG := context.WithCancel(runCtx)
	defer stopBG()
	a.bgCtx, a.cancel = bg, cancel
	frames := c.openFrames(&enc, a) // the activity feed (framepipe.go)
	cmd, stdout, stderr := c.command(runCtx, cam, enc, a)
	frames.attach(cmd)
	if err := cmd.Start(); err != nil {
		a.login.Release()
		frames.abort()
		a.writeMeta(func(m *staging.Meta) { m.Exited, m.ExitedAt = true, c.deps.Now() })
		return c.failedStart(a.run.ID, "start ffmpeg: "+err.Error()), nil
	}
	frames.start()
	pid := cmd.Process.Pid
	a.writeMeta(func(m *staging.Meta) { m.PID = pid })
	c.update(func(s *Status) {
		s.State, s.PID, s.RunID, s.RecordingSince, s.Progress, s.Mode = Starting, pid, a.run.ID, time.Time{}, nil, enc.Mode()
	})
	a.log.Info().Int("pid", pid).Str("url", cam.RedactedURL()).Str("mode", enc.Mode()).Str("hwaccel", enc.HWAccel).Msg("ffmpeg started")
	c.emit(Event{Kind: EventStarted, At: started, RunID: a.run.ID})

	unwatch := c.stalls.add(&watchedRun{c: c, runID: a.run.ID, wd: a.wd, cancel: cancel})
	err = cmd.Wait()
	unwatch()
	stdout.flush()
	stderr.flush()
	frames.finish()
	stopBG()
	a.bg.Wait()
	if a.probedAgain {
		c.reprobe = false // the kept decision was probed again: once a life
	}
	exit := c.exited(ctx, runCtx, a, err)
	c.mu.Lock()
	if p := c.pending; p != nil {
		// The stream changed (a background probe): the next run records
		// it as it is now.
		c.decision, c.codec, c.probed, c.probedAt, c.reprobe, c.pending = p.Decision, p.Codec, p.Stream, p.ProbedAt, false, nil
	}
	c.mu.Unlock()
	return exit, nil
}

// claimRun makes cancel the way Stop ends the run, and returns the
// function that releases it. A stop that came between the loop's check
// and here cancels the run at once.
func (c *Camera) claimRun(cancel context.CancelCauseFunc) (release func()) {
	c.mu.Lock()
	c.cancelRun = cancel
	if !c.desired() {
		cancel(errStopped)
	}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.cancelRun = nil
		c.mu.Unlock()
	}
}

// attempt is one ffmpeg run: its files and metadata, and what its output
// has said so far.
type attempt struct {
	c   *Camera
	run staging.Run
	log zerolog.Logger

	metaMu sync.Mutex // progress and exit both write meta
	meta   staging.Meta
	// metaUnsaved: the last write of meta failed (a full or failing
	// disk); the next progress block writes it again, so that the
	// segmenter does not wait on a settled epoch the file never got.
	metaUnsaved bool

	// The output goroutines' own (one each).
	tail        []string // last stderr lines, redacted
	parser      progressParser
	estimator   epochEstimator
	epochBlocks int // blocks that advanced with frames: the epoch settles at the second

	// Under c.mu: the watchdog (from ffmpeg's start), and when the run
	// began recording.
	wd          *watchdog
	recording   time.Duration // monotonic time of the first frame
	isRecording bool

	// login is ffmpeg's login, taken from the budget before it starts:
	// accepted once it records, refused if it exits on a 401 or 403.
	login *loginbudget.Login

	// What the run records (the camera as found, how), and the probe it
	// keeps once it records (probes.go).
	cam config.Camera
	enc Encoding
	row Probe
	// reprobing: the decision is the one kept from before a restart; it
	// is confirmed once the run records (probedAgain: it was).
	reprobing, probedAgain bool
	// The run's background work once it records (keeping row, probing
	// again): it ends with bgCtx, before the run's exit is reported;
	// cancel ends the run.
	bgCtx  context.Context
	bg     sync.WaitGroup
	cancel context.CancelCauseFunc
	// Under c.mu: the stream time of the latest progress block, and when
	// it came (monotonic): where the next segment boundary is.
	lastOut, lastOutMono time.Duration
}

func (c *Camera) newAttempt(started time.Time) *attempt {
	run := staging.Run{Dir: c.dir, ID: staging.NewRunID(started)}
	return &attempt{
		c:         c,
		run:       run,
		log:       c.log.With().Str("run", run.ID).Logger(),
		meta:      staging.Meta{RunID: run.ID, Camera: c.cfg.CameraName, FeedID: c.cfg.VideoFeedID, Feed: c.cfg.Feed, Owner: c.opts.Owner, StartedAt: started},
		estimator: epochEstimator{window: 30 * time.Second},
	}
}

// writeMeta changes the run's metadata and writes it for the segmenter.
func (a *attempt) writeMeta(update func(*staging.Meta)) {
	a.metaMu.Lock()
	defer a.metaMu.Unlock()
	update(&a.meta)
	err := staging.WriteMeta(a.run.MetaPath(), a.meta)
	a.metaUnsaved = err != nil // written again at the next progress block
	if err != nil {
		a.log.Error().Err(err).Msg("cannot write run metadata")
	}
}

// command builds ffmpeg's process: its own process group, SIGINT to stop
// (it finalises the segment while data flows), SIGTERM after a stall, the
// minimal environment, and its output read line by line.
func (c *Camera) command(runCtx context.Context, cam config.Camera, enc Encoding, a *attempt) (*exec.Cmd, *lineWriter, *lineWriter) {
	cmd := exec.CommandContext(runCtx, c.opts.FFmpegPath, Args(cam, a.run, enc)...)
	cmd.Env = media.Env() // not the daemon's token or AWS credentials
	cmd.WaitDelay = c.opts.StopTimeout
	configureProcess(cmd, func() syscall.Signal {
		if errors.Is(context.Cause(runCtx), errStalled) {
			return syscall.SIGTERM
		}
		return syscall.SIGINT
	})
	stdout := newLineWriter(4096, a.progressLine)
	stderr := newLineWriter(2048, a.stderrLine).masked(c.deps.Redactor) // masked, then cut
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd, stdout, stderr
}

// progressLine takes a line of ffmpeg's -progress output: each block feeds
// the watchdog and the status; the first that advances makes the camera
// Recording; the stream's wall-clock epoch goes into the run's metadata
// when it moves (a clock step), so the segments are named on it.
func (a *attempt) progressLine(line string) {
	c := a.c
	p, ok := a.parser.line(line)
	if !ok {
		return
	}
	now, mono := c.deps.Now(), c.deps.Mono()
	var epoch time.Time
	settles := false
	c.mu.Lock()
	advanced := a.wd.observe(p, mono)
	a.lastOut, a.lastOutMono = p.OutTime, mono
	if advanced && p.Frame > 0 {
		epoch = wallEpoch(now, mono, a.estimator.add(mono, p.OutTime))
		a.epochBlocks++
		// The first block is written as ffmpeg writes its first frame,
		// after probing the stream with its frames buffered: seconds late.
		// The next, a period later, comes after it caught up.
		settles = a.epochBlocks == 2
	}
	became := false
	c.update(func(s *Status) {
		s.Progress = &p
		if advanced && s.State == Starting {
			s.State, s.RecordingSince, s.LastError, s.FailedLogins = Recording, now, "", 0
			a.recording, a.isRecording, became = mono, true, true
		}
	})
	c.mu.Unlock()
	if became {
		a.login.Accepted()
		a.log.Info().Msg("recording")
		c.emit(Event{Kind: EventRecording, At: now, RunID: a.run.ID})
		a.bg.Go(func() {
			// The stream records: the next start may be tight, and needs
			// no probe (mode auto).
			c.putProbe(a.bgCtx, a.row)
			if a.reprobing {
				a.reprobe(a.bgCtx)
			}
		})
	}
	if !epoch.IsZero() {
		a.metaMu.Lock()
		prev, unsaved := a.meta.Epoch, a.metaUnsaved
		a.metaMu.Unlock()
		if drift := prev.Sub(epoch).Abs(); drift > 100*time.Millisecond || settles || unsaved { // names are to the second; each write wakes the segmenter
			if drift > time.Second && !prev.IsZero() && !settles {
				a.log.Info().Time("from", prev).Time("to", epoch).Msg("the stream's start moved on the wall clock (a clock step): the next segments are named on the new time")
			}
			a.writeMeta(func(m *staging.Meta) { m.Epoch, m.EpochSettled = epoch, m.EpochSettled || settles })
		}
	}
}

// stderrLine takes a line of ffmpeg's stderr, already masked: it is logged
// at its level and kept in the tail that explains an exit.
func (a *attempt) stderrLine(line string) {
	a.tail = append(a.tail, line)
	if len(a.tail) > 20 {
		a.tail = a.tail[1:]
	}
	ev := a.log.Debug()
	switch ffmpegLevel(line) {
	case levelWarning:
		ev = a.log.Warn()
	case levelError:
		ev = a.log.Error()
	}
	ev.Str("source", "ffmpeg").Msg(line)
}

// exited records and reports how a run ended: the metadata says so (the
// segmenter may salvage what is left), the exit is classified from why the
// run's context ended, ffmpeg's exit status and its last lines.
func (c *Camera) exited(ctx, runCtx context.Context, a *attempt, waitErr error) Exit {
	ended := c.deps.Now()
	a.writeMeta(func(m *staging.Meta) { m.Exited, m.ExitedAt = true, ended })

	cause := context.Cause(runCtx)
	if cause != nil && errors.Is(cause, context.Canceled) && ctx.Err() != nil {
		cause = errShutdown
	}
	code, sig := exitStatus(waitErr)
	reason, msg := classify(cause, code, sig, a.tail, c.opts.StallTimeout.String())
	exit := Exit{RunID: a.run.ID, At: ended, Code: code, Signal: sig, Reason: reason, Message: msg}
	if a.isRecording {
		exit.Recorded = c.deps.Mono() - a.recording
		c.known, c.tightMisses = true, 0
	} else if reason == ReasonExited || reason == ReasonStalled {
		// Never recorded, with the camera reached: the stream may have
		// changed (a copy that ffmpeg cannot mux); probe again. A camera
		// that could not be reached (rebooting, the network), refused the
		// login or the path keeps its decision: its stream did not
		// change, and the next start needs no probe (a new stream found
		// by discovery is probed anyway).
		c.decision = ""
		if tightFailed(a.enc, reason, a.isRecording) {
			// The camera's session description may lack the stream's
			// parameters: probe in full from now on, when ffmpeg says so
			// or a second tight start in a row fails all the same.
			if c.tightMisses++; lacksParameters(a.tail) || c.tightMisses >= tightMissesLoose {
				c.loose = true
				a.row.Loose = true
				c.putProbe(ctx, a.row)
				a.log.Info().Msg("ffmpeg started on the stream's first packet and never recorded: it probes the stream in full from now on")
			}
		}
	}
	c.streamRefused(reason)
	if reason == ReasonAuth {
		a.login.Refused() // nil without credentials: asked for some, none sent
		c.countFailures()
	} else {
		a.login.Release() // ended before a frame: the verdict is unknown
	}
	c.update(func(s *Status) {
		s.LastExit, s.PID, s.Progress = &exit, 0, nil
		if reason != ReasonStopped && reason != ReasonReconfigured {
			s.LastError = msg
		}
		if reason == ReasonStalled {
			s.Stalls++
		}
	})
	lev := a.log.Warn()
	if reason == ReasonStopped || reason == ReasonReconfigured {
		lev = a.log.Info()
	}
	lev.Int("code", code).Str("signal", sig).Str("reason", string(reason)).Dur("recorded", exit.Recorded).Str("why", msg).Msg("ffmpeg exited")
	c.emit(Event{Kind: EventExited, At: ended, RunID: a.run.ID, Exit: &exit})
	return exit
}

// held reports a start the Gate refused.
func (c *Camera) held(runID string, err error) Exit {
	msg := c.deps.Redactor.String(err.Error())
	reason := ReasonStartFailed
	if errors.Is(err, ErrStorageUnavailable) {
		reason = ReasonStorage
	}
	exit := Exit{RunID: runID, At: c.deps.Now(), Code: -1, Reason: reason, Message: msg}
	c.update(func(s *Status) { s.LastExit, s.LastError, s.PID = &exit, msg, 0 })
	c.log.Warn().Str("error", msg).Msg("ffmpeg not started")
	c.emit(Event{Kind: EventExited, At: exit.At, RunID: runID, Exit: &exit})
	return exit
}

// probeRefused reports a run whose probe the camera refused: an auth
// failure, without starting ffmpeg.
func (c *Camera) probeRefused(runID string, e *probeRefused) Exit {
	msg := c.deps.Redactor.String(e.Error())
	exit := Exit{RunID: runID, At: c.deps.Now(), Code: -1, Reason: ReasonAuth, Message: msg}
	c.streamRefused(ReasonAuth)
	c.countFailures()
	c.update(func(s *Status) { s.LastExit, s.LastError, s.PID = &exit, msg, 0 })
	c.log.Warn().Str("reason", string(ReasonAuth)).Str("why", msg).Msg("ffmpeg not started: the camera refused the probe's login")
	c.emit(Event{Kind: EventExited, At: exit.At, RunID: runID, Exit: &exit})
	return exit
}

func (c *Camera) failedStart(runID, msg string) Exit {
	msg = c.deps.Redactor.String(msg)
	exit := Exit{RunID: runID, At: c.deps.Now(), Code: -1, Reason: ReasonStartFailed, Message: msg}
	c.update(func(s *Status) { s.LastExit, s.LastError, s.PID = &exit, msg, 0 })
	c.log.Error().Str("error", msg).Msg("cannot start ffmpeg")
	c.emit(Event{Kind: EventExited, At: exit.At, RunID: runID, Exit: &exit})
	return exit
}
