package supervisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/staging"
)

// runOnce runs ffmpeg once, from start to exit.
func (c *Camera) runOnce(ctx context.Context) Exit {
	started := c.deps.Now()
	run := staging.Run{Dir: c.dir, ID: staging.NewRunID(started)}
	log := c.log.With().Str("run", run.ID).Logger()
	meta := staging.Meta{RunID: run.ID, Camera: c.cfg.CameraName, FeedID: c.cfg.VideoFeedID, Owner: c.opts.Owner, StartedAt: started}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.mu.Lock()
	c.cancelRun = cancel
	if !c.desired() { // stopped between the loop's check and here
		cancel(errStopped)
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.cancelRun = nil
		c.mu.Unlock()
	}()

	if c.deps.Gate != nil {
		if err := c.deps.Gate(); err != nil {
			return c.held(run.ID, err)
		}
	}
	cam, failed := c.source(runCtx, run.ID)
	if failed != nil {
		return *failed
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return c.failedStart(run.ID, "create staging folder: "+err.Error())
	}
	if err := staging.WriteMeta(run.MetaPath(), meta); err != nil {
		return c.failedStart(run.ID, err.Error())
	}

	var (
		tail        []string // last stderr lines, redacted
		parser      progressParser
		estimator   = epochEstimator{window: 30 * time.Second}
		wd          = newWatchdog(c.opts.StallTimeout, c.deps.Mono())
		recording   time.Duration // monotonic time of the first frame
		isRecording bool
		metaMu      sync.Mutex // progress and exit both write meta
	)
	writeMeta := func(update func(*staging.Meta)) {
		metaMu.Lock()
		defer metaMu.Unlock()
		update(&meta)
		if err := staging.WriteMeta(run.MetaPath(), meta); err != nil {
			log.Error().Err(err).Msg("cannot write run metadata")
		}
	}

	enc := c.encoding(runCtx, cam)
	cmd := exec.CommandContext(runCtx, c.opts.FFmpegPath, Args(cam, run, enc)...)
	cmd.Env = media.Env() // not the daemon's token or AWS credentials
	cmd.WaitDelay = c.opts.StopTimeout
	configureProcess(cmd, func() syscall.Signal {
		if errors.Is(context.Cause(runCtx), errStalled) {
			return syscall.SIGTERM
		}
		return syscall.SIGINT // finalises the segment while data flows
	})
	stdout := newLineWriter(4096, func(line string) {
		p, ok := parser.line(line)
		if !ok {
			return
		}
		now, mono := c.deps.Now(), c.deps.Mono()
		var epoch time.Time
		c.mu.Lock()
		advanced := wd.observe(p, mono)
		if advanced && p.Frame > 0 {
			epoch = wallEpoch(now, mono, estimator.add(mono, p.OutTime))
		}
		became := false
		c.update(func(s *Status) {
			s.Progress = &p
			if advanced && s.State == Starting {
				s.State, s.RecordingSince, s.LastError = Recording, now, ""
				recording, isRecording, became = mono, true, true
			}
		})
		c.mu.Unlock()
		if became {
			log.Info().Msg("recording")
			c.emit(Event{Kind: EventRecording, At: now, RunID: run.ID})
		}
		if !epoch.IsZero() {
			metaMu.Lock()
			prev := meta.Epoch
			metaMu.Unlock()
			if drift := prev.Sub(epoch).Abs(); drift > 100*time.Millisecond { // names are to the second; each write wakes the segmenter
				if drift > time.Second && !prev.IsZero() {
					log.Info().Time("from", prev).Time("to", epoch).Msg("the stream's start moved on the wall clock (a clock step): the next segments are named on the new time")
				}
				writeMeta(func(m *staging.Meta) { m.Epoch = epoch })
			}
		}
	})
	stderr := newLineWriter(2048, func(line string) { // masked, then cut: see masked below
		tail = append(tail, line)
		if len(tail) > 20 {
			tail = tail[1:]
		}
		ev := log.Debug()
		switch ffmpegLevel(line) {
		case levelWarning:
			ev = log.Warn()
		case levelError:
			ev = log.Error()
		}
		ev.Str("source", "ffmpeg").Msg(line)
	}).masked(c.deps.Redactor)
	cmd.Stdout, cmd.Stderr = stdout, stderr

	if err := cmd.Start(); err != nil {
		writeMeta(func(m *staging.Meta) { m.Exited, m.ExitedAt = true, c.deps.Now() })
		return c.failedStart(run.ID, "start ffmpeg: "+err.Error())
	}
	pid := cmd.Process.Pid
	writeMeta(func(m *staging.Meta) { m.PID = pid })
	c.update(func(s *Status) {
		s.State, s.PID, s.RunID, s.RecordingSince, s.Progress, s.Mode = Starting, pid, run.ID, time.Time{}, nil, enc.Mode()
	})
	log.Info().Int("pid", pid).Str("url", cam.RedactedURL()).Str("mode", enc.Mode()).Str("hwaccel", enc.HWAccel).Msg("ffmpeg started")
	c.emit(Event{Kind: EventStarted, At: started, RunID: run.ID})

	watchDone := make(chan struct{})
	var watchWG sync.WaitGroup
	watchWG.Go(func() { c.watch(runCtx, cancel, run.ID, wd, watchDone) })

	err := cmd.Wait()
	close(watchDone)
	watchWG.Wait()
	stdout.flush()
	stderr.flush()
	ended := c.deps.Now()
	writeMeta(func(m *staging.Meta) { m.Exited, m.ExitedAt = true, ended })

	cause := context.Cause(runCtx)
	if cause != nil && errors.Is(cause, context.Canceled) && ctx.Err() != nil {
		cause = errShutdown
	}
	code, sig := exitStatus(err)
	reason, msg := classify(cause, code, sig, tail, c.opts.StallTimeout.String())
	exit := Exit{RunID: run.ID, At: ended, Code: code, Signal: sig, Reason: reason, Message: msg}
	if isRecording {
		exit.Recorded = c.deps.Mono() - recording
	} else if reason != ReasonStopped && reason != ReasonReconfigured {
		c.decision = "" // never recorded: the stream may have changed; probe again
	}
	c.streamRefused(reason)
	c.update(func(s *Status) {
		s.LastExit, s.PID, s.Progress = &exit, 0, nil
		if reason != ReasonStopped && reason != ReasonReconfigured {
			s.LastError = msg
		}
		if reason == ReasonStalled {
			s.Stalls++
		}
	})
	lev := log.Warn()
	if reason == ReasonStopped || reason == ReasonReconfigured {
		lev = log.Info()
	}
	lev.Int("code", code).Str("signal", sig).Str("reason", string(reason)).Dur("recorded", exit.Recorded).Msg("ffmpeg exited: " + msg)
	c.emit(Event{Kind: EventExited, At: ended, RunID: run.ID, Exit: &exit})
	return exit
}

// watch is the stall watchdog: it cancels the run when progress has not
// advanced for the stall timeout.
func (c *Camera) watch(ctx context.Context, cancel context.CancelCauseFunc, runID string, wd *watchdog, done <-chan struct{}) {
	for {
		c.mu.Lock()
		wait := wd.deadline() - c.deps.Mono()
		c.mu.Unlock()
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-c.deps.After(max(wait, 10*time.Millisecond)):
		}
		now := c.deps.Now()
		c.mu.Lock()
		stalled := wd.expired(c.deps.Mono())
		if stalled {
			c.update(func(s *Status) { s.State = Stalled })
		}
		c.mu.Unlock()
		if stalled {
			c.log.Warn().Dur("timeout", c.opts.StallTimeout).Msg("stalled: no new frames, stopping ffmpeg")
			c.emit(Event{Kind: EventStalled, At: now, RunID: runID})
			cancel(errStalled)
			return
		}
	}
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
	c.log.Warn().Msg("ffmpeg not started: " + msg)
	c.emit(Event{Kind: EventExited, At: exit.At, RunID: runID, Exit: &exit})
	return exit
}

func (c *Camera) failedStart(runID, msg string) Exit {
	msg = c.deps.Redactor.String(msg)
	exit := Exit{RunID: runID, At: c.deps.Now(), Code: -1, Reason: ReasonStartFailed, Message: msg}
	c.update(func(s *Status) { s.LastExit, s.LastError, s.PID = &exit, msg, 0 })
	c.log.Error().Msg("cannot start ffmpeg: " + msg)
	c.emit(Event{Kind: EventExited, At: exit.At, RunID: runID, Exit: &exit})
	return exit
}
