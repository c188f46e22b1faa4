package supervisor

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/staging"
)

// MaxKeyframeInterval caps the distance between keyframes when
// transcoding, so a player can seek inside a long segment.
const MaxKeyframeInterval = 10.0 // seconds

// segmentFormatOptions make every segment a fragmented MP4 flushed every
// half second: after a kill -9 or a power cut all but at most half a second
// of it is still playable, where a plain MP4 without its moov atom is lost
// whole. (A fragment costs about a hundred bytes of headers.)
const segmentFormatOptions = "movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=500000:flush_packets=1"

// Encoding is how one run records.
type Encoding struct {
	// Copy keeps the camera's stream as it is; Codec (from ffprobe, may be
	// empty) is its codec.
	Copy  bool
	Codec string
	// HWAccel is "", "vaapi", "qsv" or "nvenc": an accelerator checked to
	// be there. HWDevice is the VAAPI/QSV render node.
	HWAccel, HWDevice string
	// Preset is libx264's preset.
	Preset string
	// ProgressPeriod is how often ffmpeg writes a progress block
	// (-stats_period, see ProgressPeriod); 0 is once a second.
	ProgressPeriod time.Duration
	// Tight starts ffmpeg on the first packet instead of seconds of
	// probing (tightArgs): for a stream recorded before (probes.go).
	Tight bool
	// Activity adds a second output, the activity feed: small gray frames
	// as timestamped JPEGs (SMJPEG) on file descriptor ActivityFD, from the
	// recording's own decode (see activityOutput).
	Activity bool
}

// The activity feed: ActivityWidth pixels wide, the height keeping the
// configured aspect; in transcode mode ActivityRate frames a second.
const (
	ActivityFD    = 3 // the first of exec.Cmd.ExtraFiles
	ActivityWidth = 160
	ActivityRate  = 2
)

// ActivitySize is the activity feed's frame size for a camera recorded at
// w x h: ActivityWidth wide, an even height keeping the aspect.
func ActivitySize(w, h int) (int, int) {
	if w <= 0 || h <= 0 {
		return ActivityWidth, 90
	}
	return ActivityWidth, max(2, 2*int(math.Round(float64(ActivityWidth*h)/float64(2*w))))
}

// Mode is "copy" or "transcode", as the API shows it.
func (e Encoding) Mode() string {
	if e.Copy {
		return "copy"
	}
	return "transcode"
}

// Args builds ffmpeg's argument list for one run of one camera. The list
// holds the camera's password in its URL; it is never logged as is.
func Args(cam config.Camera, run staging.Run, enc Encoding) []string {
	dur := num(cam.VideoDuration)
	args := []string{
		"-hide_banner", "-nostdin", "-nostats", "-y",
		"-loglevel", "level+info",
		"-progress", "pipe:1", "-stats_period", statsPeriod(enc.ProgressPeriod),
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
	if !enc.Copy {
		switch enc.HWAccel {
		case "vaapi":
			args = append(args, "-hwaccel", "vaapi", "-hwaccel_device", enc.HWDevice, "-hwaccel_output_format", "vaapi")
		case "qsv":
			args = append(args, "-hwaccel", "qsv", "-qsv_device", enc.HWDevice, "-hwaccel_output_format", "qsv")
		case "nvenc":
			args = append(args, "-hwaccel", "cuda", "-hwaccel_output_format", "cuda")
		}
	}
	activity := enc.Activity && (enc.Copy || enc.HWAccel == "")
	if activity && enc.Copy {
		// Decode the keyframes only, on one thread (a frame-threaded
		// decoder would hold frames back): the -c copy output is not
		// touched, it gets every packet as before.
		args = append(args, "-skip_frame", "nokey", "-threads", "1")
		if !enc.Tight {
			// The probe's decoder skips them too, so it never counts the
			// frames that estimate the frame rate and reads for the whole
			// -analyzeduration (5 s before the first frame is written,
			// measured: 2.4 s without the estimate). A copy takes its
			// rate from the stream's timestamps.
			args = append(args, "-fpsprobesize", "0")
		}
	}
	input := u.String()
	if u.Scheme == "file" {
		input = u.Path
	}
	if enc.Tight {
		args = append(args, tightArgs...)
	}
	args = append(args, "-i", input)
	if activity && !enc.Copy {
		// The decoded frames exist anyway: one filter graph feeds the
		// recording and, sampled, the activity feed.
		w, h := cam.Size()
		args = append(args, "-filter_complex", fmt.Sprintf("[0:v:0]fps=%s,scale=%d:%d,split=2[rec][act];[act]%s[actv]",
			num(cam.FrameRate), w, h, activityFilter(cam, true)), "-map", "[rec]", "-an")
	} else {
		args = append(args, "-map", "0:v:0", "-an")
	}

	if enc.Copy {
		// The camera's own frames: no decoding. Cuts land on its keyframes.
		args = append(args, "-c:v", "copy")
		if enc.Codec == "hevc" {
			args = append(args, "-tag:v", "hvc1")
		}
	} else {
		w, h := cam.Size()
		fps := num(cam.FrameRate)
		gop := strconv.Itoa(max(1, int(math.Round(cam.FrameRate*math.Min(cam.VideoDuration, MaxKeyframeInterval)))))
		switch enc.HWAccel {
		case "vaapi":
			args = append(args, "-vf", fmt.Sprintf("fps=%s,scale_vaapi=w=%d:h=%d:format=nv12", fps, w, h),
				"-c:v", "h264_vaapi", "-g", gop, "-bf", "0")
		case "qsv":
			args = append(args, "-vf", fmt.Sprintf("fps=%s,scale_qsv=w=%d:h=%d", fps, w, h),
				"-c:v", "h264_qsv", "-g", gop, "-bf", "0", "-forced_idr", "1")
		case "nvenc":
			args = append(args, "-vf", fmt.Sprintf("fps=%s,scale_cuda=%d:%d", fps, w, h),
				"-c:v", "h264_nvenc", "-preset", "p4", "-tune", "ll", "-g", gop, "-bf", "0", "-forced-idr", "1")
		default:
			if !activity {
				args = append(args, "-vf", fmt.Sprintf("fps=%s,scale=%d:%d", fps, w, h))
			}
			args = append(args,
				"-c:v", "libx264", "-preset", enc.Preset, "-tune", "zerolatency",
				// No scene-cut keyframes: only the forced ones at segment
				// boundaries and one every gop frames.
				"-sc_threshold", "0", "-g", gop,
				"-pix_fmt", "yuv420p")
		}
		args = append(args, "-force_key_frames", "expr:gte(t,n_forced*"+dur+")")
	}
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
	if activity {
		args = append(args, activityOutput(cam, enc.Copy)...)
	}
	return args
}

// activityFilter scales frames to the activity feed's small size; in
// transcode mode it first keeps one frame in every 1/ActivityRate s slot,
// the first of the slot, so a segment's first frame (at a whole second of
// stream time) is sampled as it passes, not held back.
func activityFilter(cam config.Camera, sample bool) string {
	w, h := ActivitySize(cam.Size())
	f := fmt.Sprintf("scale=%d:%d:flags=area,format=yuv420p", w, h)
	if sample {
		r := strconv.Itoa(ActivityRate)
		f = "select='isnan(prev_selected_t)+gte(floor(t*" + r + "+0.001)-floor(prev_selected_t*" + r + "+0.001),1)'," + f
	}
	return f
}

// activityOutput is the activity feed's output: SMJPEG, whose every frame
// carries its time and is written as it comes (a raw video stream has no
// times; Matroska and fragmented MP4 hold a frame back until the next),
// flushed at once to the pipe, without a passthrough frame rate ffmpeg
// would duplicate frames to a constant rate.
func activityOutput(cam config.Camera, copyMode bool) []string {
	var out []string
	if copyMode {
		out = append(out, "-map", "0:v:0", "-vf", activityFilter(cam, false))
	} else {
		out = append(out, "-map", "[actv]")
	}
	// yuv420p (limited range) rather than the deprecated yuvj420p, which
	// makes swscale warn at every frame: the encoder takes it as unofficial.
	return append(out, "-an", "-fps_mode", "passthrough", "-c:v", "mjpeg", "-strict", "unofficial", "-q:v", "3",
		"-map_metadata", "-1", "-f", "smjpeg", "-flush_packets", "1", "pipe:"+strconv.Itoa(ActivityFD))
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
