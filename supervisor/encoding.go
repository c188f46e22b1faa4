package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/discovery"
	"github.com/cctvd/cctvd/internal/media"
)

// probeStream asks ffprobe what the camera sends.
func probeStream(ctx context.Context, ffprobe string, cam config.Camera) (media.StreamInfo, error) {
	u := cam.URL()
	input, transport := u.String(), ""
	switch u.Scheme {
	case "rtsp", "rtsps":
		transport = cam.RTSPTransport
	case "file":
		input = u.Path
	}
	return media.Stream(ctx, ffprobe, input, transport)
}

// canCopy says whether a stream can be recorded as it is for cam: a codec
// MP4 holds, the configured resolution, at most the configured frame rate.
func canCopy(cam config.Camera, s media.StreamInfo) (bool, string) {
	w, h := cam.Size()
	// One rule for the ONVIF profile choice and this decision.
	return discovery.Copyable(s.Codec, s.Width, s.Height, s.FPS, w, h, cam.FrameRate)
}

// hwAvailable checks that an accelerator's device and encoder are there.
func hwAvailable(ctx context.Context, ffmpeg, hw, device string) error {
	switch hw {
	case "vaapi", "qsv":
		if _, err := os.Stat(device); err != nil {
			return fmt.Errorf("no device: %w", err)
		}
	case "nvenc":
		if _, err := os.Stat("/dev/nvidiactl"); err != nil {
			return errors.New("no NVIDIA device (/dev/nvidiactl)")
		}
	}
	out, err := media.Encoders(ctx, ffmpeg)
	if err != nil {
		return err
	}
	if enc := "h264_" + hw; !strings.Contains(out, " "+enc+" ") {
		return fmt.Errorf("this ffmpeg has no %s encoder", enc)
	}
	return nil
}

// encoding decides how the next run records (encodingOf) and whether it
// makes the activity feed: on unless turned off, from the keyframes when
// copying and from the decoded frames when transcoding in software (a GPU's
// frames stay on the GPU: no feed).
func (c *Camera) encoding(ctx context.Context, cam config.Camera) (Encoding, error) {
	enc, err := c.encodingOf(ctx, cam)
	enc.Activity = !c.activityOff() && (enc.Copy || enc.HWAccel == "")
	return enc, err
}

// encodingOf decides how the next run records: copy or transcode (for
// "auto", from what ffprobe finds, decided once and again after a run that
// reached the camera and never recorded: run.go; after a restart, the
// decision kept from before, confirmed in the background: probes.go), and
// on which accelerator (checked once; software, with a warning, when it is
// not there).
//
// The probe logs in: its login is taken from the failed-login budget (the
// error is a *loginbudget.SpentError when it may not go), and a probe the
// camera refused ends the run (a *probeRefused): ffmpeg would only be
// refused once more.
func (c *Camera) encodingOf(ctx context.Context, cam config.Camera) (Encoding, error) {
	c.readProbe(ctx, cam)
	enc := Encoding{Preset: c.opts.Preset, ProgressPeriod: ProgressPeriod(c.opts.StallTimeout, c.cfg.SegmentDuration()),
		Tight: tightProbing(cam, c.known, c.loose)}
	switch c.cfg.Mode {
	case config.ModeCopy:
		enc.Copy = true
		return enc, nil
	case config.ModeAuto:
		if c.decision == "" {
			login, err := c.login()
			if err != nil {
				return enc, err
			}
			info, err := probeStream(ctx, c.opts.ProbePath, cam)
			if err != nil {
				if line, refused := refusedIn(strings.Split(err.Error(), "\n")); refused && ctx.Err() == nil {
					login.Refused()
					return enc, &probeRefused{line: line}
				}
				login.Release()
				c.log.Warn().Str("error", c.deps.Redactor.String(err.Error())).Msg("cannot probe the stream, transcoding this time")
				break
			}
			login.Accepted()
			c.probed, c.probedAt, c.reprobe = info.String(), c.deps.Now(), false // fresh: nothing to confirm
			if ok, why := canCopy(cam, info); ok {
				c.decision, c.codec = "copy", info.Codec
				c.log.Info().Str("stream", info.String()).Msg("the camera already sends what is configured: recording its stream as is (copy)")
			} else {
				c.decision = "transcode"
				c.log.Info().Str("stream", info.String()).Str("why", why).Msg("transcoding")
			}
		}
		if c.decision == "copy" {
			enc.Copy, enc.Codec = true, c.codec
			return enc, nil
		}
	}
	if c.cfg.HWAccel != "" {
		if !c.hwChecked {
			c.hwErr = hwAvailable(ctx, c.opts.FFmpegPath, c.cfg.HWAccel, c.cfg.HWAccelDevice)
			// Only a definite answer is kept: a check cut short (a stop, a
			// loaded box past the timeout) is made again at the next run.
			c.hwChecked = !errors.Is(c.hwErr, media.ErrTimeout) && ctx.Err() == nil
			if c.hwErr != nil {
				c.log.Warn().Err(c.hwErr).Str("hwaccel", c.cfg.HWAccel).Msg("hardware acceleration unavailable, encoding in software")
			} else {
				c.log.Info().Str("hwaccel", c.cfg.HWAccel).Msg("transcoding on the GPU")
			}
		}
		if c.hwErr == nil {
			enc.HWAccel, enc.HWDevice = c.cfg.HWAccel, c.cfg.HWAccelDevice
		}
	}
	return enc, nil
}
