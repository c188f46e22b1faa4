package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/discovery"
)

// StreamInfo is what ffprobe says of a camera's video stream.
type StreamInfo struct {
	Codec         string
	Width, Height int
	FPS           float64
}

func (s StreamInfo) String() string {
	return fmt.Sprintf("%s %dx%d at %s fps", s.Codec, s.Width, s.Height, num(s.FPS))
}

// probeStream asks ffprobe what the camera sends.
func probeStream(ctx context.Context, ffprobe string, cam config.Camera) (StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	args := []string{"-v", "error"}
	u := cam.URL()
	if u.Scheme == "rtsp" || u.Scheme == "rtsps" {
		args = append(args, "-rtsp_transport", cam.RTSPTransport, "-timeout", "5000000")
	}
	input := u.String()
	if u.Scheme == "file" {
		input = u.Path
	}
	args = append(args, "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height,avg_frame_rate,r_frame_rate", "-of", "json", input)
	cmd := exec.CommandContext(ctx, ffprobe, args...)
	cmd.Env = childEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return StreamInfo{}, fmt.Errorf("ffprobe: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			AvgFrameRate string `json:"avg_frame_rate"`
			RFrameRate   string `json:"r_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) == 0 {
		return StreamInfo{}, errors.New("ffprobe found no video stream")
	}
	st := res.Streams[0]
	info := StreamInfo{Codec: st.CodecName, Width: st.Width, Height: st.Height, FPS: rate(st.AvgFrameRate)}
	if info.FPS <= 0 || info.FPS > 1000 {
		info.FPS = rate(st.RFrameRate)
	}
	return info, nil
}

// rate parses "25/1".
func rate(s string) float64 {
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	nf, err1 := strconv.ParseFloat(n, 64)
	df, err2 := strconv.ParseFloat(d, 64)
	if err1 != nil || err2 != nil || df == 0 {
		return 0
	}
	return nf / df
}

// canCopy says whether a stream can be recorded as it is for cam: a codec
// MP4 holds, the configured resolution, at most the configured frame rate.
func canCopy(cam config.Camera, s StreamInfo) (bool, string) {
	w, h := cam.Size()
	// One rule for the ONVIF profile choice and this decision.
	return discovery.Copyable(s.Codec, s.Width, s.Height, s.FPS, w, h, cam.FrameRate)
}

// hwAvailable checks that an accelerator's device and encoder are there.
func hwAvailable(ffmpeg, hw, device string) error {
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
	cmd := exec.Command(ffmpeg, "-hide_banner", "-encoders")
	cmd.Env = childEnv()
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("ffmpeg -encoders: %w", err)
	}
	if enc := "h264_" + hw; !strings.Contains(string(out), " "+enc+" ") {
		return fmt.Errorf("this ffmpeg has no %s encoder", enc)
	}
	return nil
}

// encoding decides how the next run records: copy or transcode (for
// "auto", from what ffprobe finds, decided once and again after a run that
// never recorded), and on which accelerator (checked once; software, with a
// warning, when it is not there).
func (c *Camera) encoding(ctx context.Context, cam config.Camera) Encoding {
	enc := Encoding{Preset: c.opts.Preset}
	switch c.cfg.Mode {
	case config.ModeCopy:
		enc.Copy = true
		return enc
	case config.ModeAuto:
		if c.decision == "" {
			info, err := probeStream(ctx, c.opts.ProbePath, cam)
			if err != nil {
				c.log.Warn().Msg("cannot probe the stream, transcoding this time: " + c.deps.Redactor.String(err.Error()))
				break
			}
			if ok, why := canCopy(cam, info); ok {
				c.decision, c.codec = "copy", info.Codec
				c.log.Info().Str("stream", info.String()).Msg("the camera already sends what is configured: recording its stream as is (copy)")
			} else {
				c.decision = "transcode"
				c.log.Info().Str("stream", info.String()).Msg("transcoding: " + why)
			}
		}
		if c.decision == "copy" {
			enc.Copy, enc.Codec = true, c.codec
			return enc
		}
	}
	if c.cfg.HWAccel != "" {
		if !c.hwChecked {
			c.hwChecked = true
			if c.hwErr = hwAvailable(c.opts.FFmpegPath, c.cfg.HWAccel, c.cfg.HWAccelDevice); c.hwErr != nil {
				c.log.Warn().Str("hwaccel", c.cfg.HWAccel).Msg("hardware acceleration unavailable, encoding in software: " + c.hwErr.Error())
			} else {
				c.log.Info().Str("hwaccel", c.cfg.HWAccel).Msg("transcoding on the GPU")
			}
		}
		if c.hwErr == nil {
			enc.HWAccel, enc.HWDevice = c.cfg.HWAccel, c.cfg.HWAccelDevice
		}
	}
	return enc
}
