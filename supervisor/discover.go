package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/discovery"
	"github.com/cctvd/cctvd/internal/loginbudget"
)

// Discovering: the camera has no configured path and its stream is being
// looked for (ONVIF, then known paths) before ffmpeg starts.
const Discovering StateName = "discovering"

// Stream is a stream discovery found for a camera.
type Stream struct {
	// Key says what the stream was found for (address, ports, user,
	// discovery method, resolution and rate): a camera whose key changed
	// is discovered again.
	Key string
	// URI is the stream's URL without credentials.
	URI string
	// Source says where it came from: `onvif profile "mainStream"`,
	// `known path /Streaming/Channels/101`.
	Source  string
	FoundAt time.Time
}

// StreamFinder finds the stream of a camera configured without a path.
// Its errors wrap discovery.ErrAuth, discovery.ErrNotFound or
// discovery.ErrUnreachable.
type StreamFinder interface {
	// FindStream logs its steps to log.
	FindStream(ctx context.Context, cam config.Camera, log zerolog.Logger) (Stream, error)
}

// StreamStore remembers found streams across restarts (the catalog).
type StreamStore interface {
	// Get returns the stream last found for the camera; ok is false when
	// there is none.
	Get(ctx context.Context, camera string) (s Stream, ok bool, err error)
	Put(ctx context.Context, camera string, s Stream) error
}

// RecordedBefore is what a StreamStore may also say: whether the camera
// has footage although no stream was ever found for it, as after an
// upgrade from cctvd 0.1, which recorded a camera without rtspPath at
// rtsp://ip:rtspPort/. That stream is then tried first, as it was
// recorded until now; the camera refusing it (404, 401) makes discovery
// run, as for any remembered stream.
type RecordedBefore interface {
	RecordedBefore(ctx context.Context, camera string) (bool, error)
}

// sourceBefore is the Source of the stream cctvd 0.1 recorded.
const sourceBefore = "rtsp://ip:rtspPort/, as recorded before (cctvd 0.1 had no discovery)"

// DiscoveryFinder is a StreamFinder over package discovery. One serves
// every camera, so that known-path probing keeps its pace per address.
func DiscoveryFinder(f *discovery.Finder) StreamFinder { return discoveryFinder{f} }

type discoveryFinder struct{ f *discovery.Finder }

func (d discoveryFinder) FindStream(ctx context.Context, cam config.Camera, log zerolog.Logger) (Stream, error) {
	w, h := cam.Size()
	found, err := d.f.Find(ctx, discovery.Target{
		Host: cam.IPAddress, RTSPPort: cam.RTSPPort, ONVIFPort: cam.ONVIFPort,
		User: cam.UserName, Password: cam.Password,
		Width: w, Height: h, FPS: cam.FrameRate, Method: cam.Discovery, Logins: loginLimit(cam), Sub: cam.IsSub(), Configure: cam.ConfigureCamera,
	}, func(a discovery.Attempt) {
		switch {
		case a.Path == "":
			log.Info().Err(a.Err).Msg("ONVIF found no stream; trying vendors' known paths")
		case a.Err != nil:
			log.Info().Str("path", a.Path).Str("vendor", a.Vendor).Int("status", a.Result.Status).Err(a.Err).Msg("known path tried")
		default:
			log.Info().Str("path", a.Path).Str("vendor", a.Vendor).Str("codec", a.Result.Codec).Msg("known path answers with video")
		}
	})
	if err != nil {
		return Stream{}, err
	}
	switch {
	case found.Configured != "":
		log.Info().Str("configured", found.Configured).Msg("the camera now sends what is configured (configureCamera)")
	case found.ConfigureError != "":
		log.Warn().Str("error", found.ConfigureError).Msg("cannot ask the camera for what is configured (configureCamera); transcoding")
	}
	return Stream{URI: found.URI, Source: found.Source}, nil
}

// streamKey is what a found stream depends on.
func streamKey(cam config.Camera) string {
	key := fmt.Sprintf("%s|%d|%d|%s|%s|%s@%s", cam.IPAddress, cam.RTSPPort, cam.ONVIFPort, cam.UserName, cam.Discovery, cam.Resolution, num(cam.FrameRate))
	if cam.ConfigureCamera { // turned on: ask the camera (found again)
		key += "|configure"
	}
	return key
}

// source returns the camera as this run records it: as configured, or with
// the stream discovery found (remembered, found again after the camera
// refused it). When discovery fails, it returns the exit to report, or the
// budget's answer when its logins could not go.
func (c *Camera) source(ctx context.Context, runID string) (config.Camera, *Exit, *loginbudget.SpentError) {
	if !c.cfg.NeedsDiscovery() {
		c.update(func(s *Status) { s.Source, s.StreamURL, s.DiscoveryError = "configured", c.cfg.RedactedURL(), "" })
		return c.cfg, nil, nil
	}
	key := streamKey(c.cfg)
	if c.stream == nil && !c.rediscover && c.deps.Streams != nil {
		st, ok, err := c.deps.Streams.Get(ctx, c.storeKey())
		switch {
		case err != nil:
			c.log.Warn().Err(err).Msg("cannot read the stream found before; discovering it")
		case ok && st.Key == key:
			c.stream = &st
			c.log.Info().Str("source", st.Source).Time("found", st.FoundAt).Msg("recording the stream found before")
		case ok:
			c.log.Info().Msg("the camera's address or settings changed since its stream was found: discovering it again")
		default:
			c.streamBefore(ctx, key)
		}
	}
	fresh := c.stream == nil
	if fresh {
		c.update(func(s *Status) { s.State, s.PID, s.Progress = Discovering, 0, nil })
		c.log.Info().Str("discovery", c.cfg.Discovery).Msg("no rtspPath: looking for the camera's stream")
		st, err := c.deps.Finder.FindStream(ctx, c.cfg, c.log.With().Str("run", runID).Logger())
		var se *loginbudget.SpentError
		switch {
		case err != nil && errors.As(err, &se) && !errors.Is(err, discovery.ErrAuth) && ctx.Err() == nil:
			// Its logins could not go: the camera waits for its
			// credentials, no run to report.
			c.log.Info().Str("why", c.deps.Redactor.String(err.Error())).Msg("discovery held: the failed-login budget is spent")
			return config.Camera{}, nil, se
		case err != nil:
			return config.Camera{}, c.discoveryFailed(ctx, runID, err), nil
		}
		st.Key, st.FoundAt = key, c.deps.Now()
		c.stream, c.rediscover, c.decision = &st, false, "" // a new stream: probe it again (mode auto)
		if c.deps.Streams != nil {
			if err := c.deps.Streams.Put(ctx, c.storeKey(), st); err != nil {
				c.log.Error().Err(err).Msg("cannot remember the stream found; it will be found again at the next start")
			}
		}
	}
	eff := c.cfg
	eff.StreamURL = c.stream.URI
	c.update(func(s *Status) { s.Source, s.StreamURL, s.DiscoveryError = c.stream.Source, eff.RedactedURL(), "" })
	if fresh {
		c.log.Info().Str("source", c.stream.Source).Str("url", eff.RedactedURL()).Msg("stream found")
	}
	return eff, nil, nil
}

// streamBefore takes the stream an earlier cctvd recorded the camera on
// (rtsp://ip:rtspPort/), if the store says it recorded the camera.
func (c *Camera) streamBefore(ctx context.Context, key string) {
	rb, ok := c.deps.Streams.(RecordedBefore)
	if !ok || c.cfg.IsSub() { // cctvd 0.1 recorded no sub feed
		return
	}
	recorded, err := rb.RecordedBefore(ctx, c.cfg.CameraName)
	if err != nil || !recorded {
		return
	}
	root := c.cfg
	root.RTSPPath, root.StreamURL, root.UserName, root.Password = "/", "", "", ""
	st := Stream{Key: key, URI: root.URL().String(), Source: sourceBefore, FoundAt: c.deps.Now()}
	c.stream = &st
	c.log.Info().Str("url", st.URI).Msg("no stream found yet, but the camera has footage: recording rtsp://ip:rtspPort/ as before; a refusal makes discovery run")
	if err := c.deps.Streams.Put(ctx, c.storeKey(), st); err != nil {
		c.log.Error().Err(err).Msg("cannot remember the stream")
	}
}

// discoveryFailed reports a discovery that found nothing as a failed run:
// not-found backs off long, unreachable briefly, and a refused password
// waits DiscoveryAuthPause.
func (c *Camera) discoveryFailed(ctx context.Context, runID string, err error) *Exit {
	reason, msg := ReasonNotFound, c.deps.Redactor.String("discovery: "+err.Error())
	switch {
	case ctx.Err() != nil: // a stop, a reload or the daemon's shutdown, as for a run
		cause := context.Cause(ctx)
		if cause == context.Canceled { // the daemon's context, without a cause of ours
			cause = errShutdown
		}
		reason, msg = classify(cause, -1, "", nil, "")
	case errors.Is(err, discovery.ErrAuth):
		reason, c.discoveryRefused = ReasonAuth, true
		c.countFailures()
	case errors.Is(err, discovery.ErrUnreachable):
		reason = ReasonUnreachable
	}
	exit := Exit{RunID: runID, At: c.deps.Now(), Code: -1, Reason: reason, Message: msg}
	c.update(func(s *Status) {
		s.LastExit = &exit
		if reason != ReasonStopped && reason != ReasonReconfigured {
			s.LastError, s.DiscoveryError = msg, msg
		}
	})
	if reason != ReasonStopped && reason != ReasonReconfigured {
		c.log.Warn().Str("reason", string(reason)).Str("error", msg).Msg("no stream found")
	} else {
		c.log.Info().Str("reason", string(reason)).Str("why", msg).Msg("discovery ended")
	}
	c.emit(Event{Kind: EventExited, At: exit.At, RunID: runID, Exit: &exit})
	return &exit
}

// streamRefused forgets a discovered stream the camera refused (401, 404):
// the next run finds it again.
func (c *Camera) streamRefused(reason ExitReason) {
	if c.stream == nil || (reason != ReasonAuth && reason != ReasonNotFound) {
		return
	}
	c.log.Info().Str("reason", string(reason)).Msg("the camera refused the stream found before: it will be discovered again")
	c.stream, c.rediscover = nil, true
}
