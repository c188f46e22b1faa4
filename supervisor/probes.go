package supervisor

import (
	"context"
	"errors"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/cctvd/cctvd/config"
)

// Probe is what cctvd knows of a camera's stream from before: mode auto's
// decision (from ffprobe) and whether ffmpeg can start on it with tight
// probing. A ProbeStore keeps it across restarts, so that a restarted
// daemon records at once, as it did before: no ffprobe pass before ffmpeg
// (it runs in the background once the camera records, and a stream that
// changed is recorded anew at the next segment boundary), and ffmpeg
// reads only the first packet before it writes (see Encoding.Tight).
type Probe struct {
	// Key says what the probe was made for (probeKey): a camera whose key
	// changed is probed again.
	Key string
	// Decision is mode auto's "copy" or "transcode" ("" when the camera is
	// recorded in a fixed mode); Codec the stream's codec; Stream how
	// ffprobe described it.
	Decision, Codec, Stream string
	// Loose: ffmpeg started with tight probing on this stream and failed
	// before recording: it probes the stream in full from then on.
	Loose    bool
	ProbedAt time.Time
}

// ProbeStore keeps probes across restarts (the catalog).
type ProbeStore interface {
	// GetProbe returns the probe kept for the camera; ok is false when
	// there is none.
	GetProbe(ctx context.Context, camera string) (p Probe, ok bool, err error)
	PutProbe(ctx context.Context, camera string, p Probe) error
}

// errReprobed ends a run whose stream changed since the probe it was
// started on: the next run records it as it is now.
var errReprobed = errors.New("the camera's stream changed since it was last probed: restarted at a segment boundary to record it as it is now")

// probeKey is what a probe depends on: the stream recorded (its URL with
// the user but not the password: a new password is the same stream), the
// transport, and what is configured of it.
func probeKey(cam config.Camera) string {
	u := cam.URL()
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return strings.Join([]string{u.String(), cam.RTSPTransport, string(cam.Mode), cam.Resolution, num(cam.FrameRate)}, "|")
}

// tightProbing says whether a run may start ffmpeg with tight probing:
// over RTSP, whose session description carries the stream's parameters,
// and on a stream this camera recorded before with them unless a start
// with them failed (loose).
func tightProbing(cam config.Camera, known, loose bool) bool {
	switch cam.URL().Scheme {
	case "rtsp", "rtsps":
		return known && !loose
	}
	return false
}

// tightArgs make ffmpeg read only the first packet before it starts
// writing: the stream's size and codec come from the RTSP session
// description. A camera whose description lacks them makes ffmpeg fail
// before it records ("could not find codec parameters"); that camera is
// then probed in full (Probe.Loose). Only the video is set up: the one
// packet read is then the video's (with a camera's audio set up too, it
// is often the audio's, and a copy fails on "dimensions not set"); the
// audio is not recorded anyway (-an).
var tightArgs = []string{"-allowed_media_types", "video", "-probesize", "32", "-analyzeduration", "0"}

// readProbe reads the probe kept for the camera, once in the camera's life
// (its first run): a probe under another key is not used.
func (c *Camera) readProbe(ctx context.Context, cam config.Camera) {
	if c.probeRead {
		return
	}
	c.probeRead = true
	if c.deps.Probes == nil {
		return
	}
	p, ok, err := c.deps.Probes.GetProbe(ctx, c.storeKey())
	switch {
	case err != nil:
		c.log.Warn().Err(err).Msg("cannot read the stream's probe kept from before; probing it")
		return
	case !ok || p.Key != probeKey(cam):
		return
	}
	c.known, c.loose = true, p.Loose
	if c.cfg.Mode == config.ModeAuto && (p.Decision == "copy" || p.Decision == "transcode") && c.decision == "" {
		c.decision, c.codec, c.probed, c.probedAt, c.reprobe = p.Decision, p.Codec, p.Stream, p.ProbedAt, true
		c.log.Info().Str("stream", p.Stream).Str("mode", p.Decision).Time("probedAt", p.ProbedAt).
			Msg("mode auto: recording as decided before the restart; the stream is probed again once it records")
	}
}

// probeRow is what the run keeps of its stream once it records: mode
// auto's decision, when it was probed, and whether ffmpeg probes in full.
func (c *Camera) probeRow(cam config.Camera) Probe {
	p := Probe{Key: probeKey(cam), Loose: c.loose, ProbedAt: c.deps.Now()}
	if c.cfg.Mode == config.ModeAuto && c.decision != "" {
		p.Decision, p.Codec, p.Stream, p.ProbedAt = c.decision, c.codec, c.probed, c.probedAt
	}
	return p
}

// putProbe keeps p for the camera's next start (a failure costs a probe
// then, not footage: it is logged).
func (c *Camera) putProbe(ctx context.Context, p Probe) {
	if c.deps.Probes == nil {
		return
	}
	if err := c.deps.Probes.PutProbe(ctx, c.storeKey(), p); err != nil && ctx.Err() == nil {
		c.log.Warn().Err(err).Msg("cannot keep the stream's probe for the next start")
	}
}

// reprobe runs once the run records on a decision kept from before the
// restart: it probes the stream in the background, keeps what it finds,
// and when the decision differs ends the run just before its next segment
// boundary (errReprobed), so that the next run records the stream as it is
// now and the segment in progress is not cut short. It returns when the
// run's background ends (bg).
func (a *attempt) reprobe(bg context.Context) {
	c := a.c
	login, err := c.login()
	if err != nil {
		return // the budget is spent: the decision stays until a later start
	}
	info, err := probeStream(bg, c.opts.ProbePath, a.cam)
	if err != nil {
		login.Release()
		if bg.Err() == nil {
			a.log.Info().Str("error", c.deps.Redactor.String(err.Error())).Msg("cannot probe the stream again; keeping the decision from before")
		}
		return
	}
	login.Accepted()
	a.probedAgain = true // confirmed or not: the camera's later runs need no other
	decision, why := "transcode", ""
	if ok, w := canCopy(a.cam, info); ok {
		decision = "copy"
	} else {
		why = w
	}
	p := Probe{Key: probeKey(a.cam), Decision: decision, Codec: info.Codec, Stream: info.String(), Loose: a.row.Loose, ProbedAt: c.deps.Now()}
	c.putProbe(bg, p)
	if decision == a.enc.Mode() && (decision != "copy" || info.Codec == a.enc.Codec) {
		a.log.Debug().Str("stream", info.String()).Msg("the stream is as probed before the restart")
		return
	}
	c.mu.Lock()
	c.pending = &p
	wait := a.untilBoundary(c.deps.Mono())
	c.mu.Unlock()
	a.log.Info().Str("stream", info.String()).Str("why", why).Str("from", a.enc.Mode()).Str("to", decision).Dur("in", wait).
		Msg("the stream changed since it was probed: recording it anew at the next segment boundary")
	select {
	case <-bg.Done():
	case <-c.deps.After(wait):
		a.cancel(errReprobed)
	}
}

// switchLead is how long before a segment boundary a run that switches
// mode is stopped: ffmpeg stops reading at once and finalises the
// segment, which is then a little short rather than followed by a
// fragment of the next.
const switchLead = 250 * time.Millisecond

// untilBoundary is how long from mono until switchLead before the run's
// next segment boundary (segments are cut every videoDuration of stream
// time, from the run's first frame), from the latest progress block;
// c.mu must be held.
func (a *attempt) untilBoundary(mono time.Duration) time.Duration {
	dur := time.Duration(a.cam.VideoDuration * float64(time.Second))
	if dur <= 0 {
		return 0
	}
	now := a.lastOut + (mono - a.lastOutMono) // stream time now
	next := time.Duration(math.Floor(float64(now)/float64(dur))+1) * dur
	wait := next - switchLead - now
	if wait < time.Second {
		wait += dur // too close: the one after
	}
	return wait
}

// tightFailed says whether a run's exit may show that ffmpeg could not
// start on tight probing: it reached the camera and never recorded.
func tightFailed(enc Encoding, reason ExitReason, recorded bool) bool {
	return enc.Tight && !recorded && (reason == ReasonExited || reason == ReasonStalled)
}

// tightMissesLoose is how many tight starts in a row may fail without
// ffmpeg saying it lacked the stream's parameters before the camera is
// probed in full all the same (a camera failing as it reboots, a 503, is
// not one).
const tightMissesLoose = 2

// lacksParameters says whether ffmpeg's last lines say it could not find
// the stream's parameters (what tight probing can cause).
func lacksParameters(tail []string) bool {
	for _, l := range tail {
		for _, s := range []string{"dimensions not set", "Could not find codec parameters", "unspecified size"} {
			if strings.Contains(l, s) {
				return true
			}
		}
	}
	return false
}
