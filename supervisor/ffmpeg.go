package supervisor

import (
	"fmt"
	"math"
	"strconv"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/staging"
)

// MaxKeyframeInterval caps the distance between keyframes when
// transcoding, so a player can seek inside a long segment.
const MaxKeyframeInterval = 10.0 // seconds

// segmentFormatOptions make every segment a fragmented MP4 flushed once a
// second: after a kill -9 or a power cut all but about a second of it is
// still playable, where a plain MP4 without its moov atom is lost whole.
const segmentFormatOptions = "movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=1000000:flush_packets=1"

// Args builds ffmpeg's argument list for one run of one camera. The list
// holds the camera's password in its URL; it is never logged as is.
func Args(cam config.Camera, run staging.Run, preset string) []string {
	dur := num(cam.VideoDuration)
	args := []string{
		"-hide_banner", "-nostdin", "-nostats", "-y",
		"-loglevel", "level+info",
		"-progress", "pipe:1", "-stats_period", "0.5",
	}
	u := cam.URL()
	switch u.Scheme {
	case "rtsp", "rtsps":
		// -timeout is in microseconds. It catches a camera that refuses or
		// vanishes, not one that stops sending but keeps its session alive:
		// the progress watchdog catches that.
		args = append(args, "-rtsp_transport", cam.RTSPTransport, "-timeout", "5000000")
	case "http", "https", "rtmp":
		args = append(args, "-rw_timeout", "5000000")
	case "file":
		// A looping local file stands in for a camera in demos and benchmarks.
		args = append(args, "-re", "-stream_loop", "-1")
	}
	input := u.String()
	if u.Scheme == "file" {
		input = u.Path
	}
	args = append(args, "-i", input, "-map", "0:v:0", "-an")

	w, h := cam.Size()
	gop := max(1, int(math.Round(cam.FrameRate*math.Min(cam.VideoDuration, MaxKeyframeInterval))))
	args = append(args,
		"-vf", fmt.Sprintf("fps=%s,scale=%d:%d", num(cam.FrameRate), w, h),
		"-c:v", "libx264", "-preset", preset, "-tune", "zerolatency",
		// No scene-cut keyframes: only the forced ones at segment boundaries
		// and one every gop frames.
		"-sc_threshold", "0", "-g", strconv.Itoa(gop),
		"-pix_fmt", "yuv420p",
		"-force_key_frames", "expr:gte(t,n_forced*"+dur+")",
	)
	args = append(args,
		"-f", "segment",
		"-segment_time", dur,
		"-reset_timestamps", "1",
		"-segment_format", "mp4",
		"-segment_format_options", segmentFormatOptions,
		"-segment_list", run.ListPath(),
		"-segment_list_type", "csv",
		run.Pattern(),
	)
	return args
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
