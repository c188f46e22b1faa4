package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Errors from Duration.
var (
	// ErrNoVideo: the file is not a playable video (corrupt, truncated
	// before its header). It is quarantined.
	ErrNoVideo = errors.New("no playable video")
	// ErrNoFrames: a valid header and not one frame that decodes, as when
	// ffmpeg opened the segment and died before its first fragment was
	// written whole. There is no footage in it to keep.
	ErrNoFrames = errors.New("no frames")
)

// Duration asks ffprobe how long a (possibly truncated) segment plays,
// and decodes its first frame: a fragmented MP4 cut inside its first
// fragment has a duration and not one frame that plays.
func Duration(ctx context.Context, ffprobe, path string) (time.Duration, error) {
	res, err := job{bin: ffprobe, timeout: SalvageTimeout, args: []string{"-v", "error", "-select_streams", "v:0",
		"-read_intervals", "%+#1", "-count_frames",
		"-show_entries", "format=duration:stream=codec_type,nb_read_frames", "-of", "json", path}}.run(ctx)
	if Failed(err) {
		if line, ok := systemError(res.stderr); ok { // an I/O error, no memory: the salvage is tried again
			return 0, fmt.Errorf("ffprobe %s, on an error of the system: %s", path, line)
		}
		return 0, fmt.Errorf("ffprobe %s: %s: %w", path, res.stderr, ErrNoVideo)
	}
	if err != nil { // ffprobe could not run: not the file's fault
		return 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	var out struct {
		Streams []struct {
			CodecType    string `json:"codec_type"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(res.stdout, &out); err != nil {
		return 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	video, frames := false, false
	for _, st := range out.Streams {
		video = video || st.CodecType == "video"
		frames = frames || (st.NbReadFrames != "" && st.NbReadFrames != "0")
	}
	if !video {
		return 0, fmt.Errorf("ffprobe %s: %w", path, ErrNoVideo)
	}
	if !frames {
		return 0, fmt.Errorf("ffprobe %s: the first frame does not decode: %w", path, ErrNoFrames)
	}
	secs, err := strconv.ParseFloat(out.Format.Duration, 64)
	if err != nil || secs <= 0 {
		return 0, fmt.Errorf("ffprobe %s: duration %q: %w", path, out.Format.Duration, ErrNoFrames)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// StreamInfo is what ffprobe says of a camera's video stream.
type StreamInfo struct {
	Codec         string
	Width, Height int
	FPS           float64
}

func (s StreamInfo) String() string {
	return fmt.Sprintf("%s %dx%d at %s fps", s.Codec, s.Width, s.Height, strconv.FormatFloat(s.FPS, 'f', -1, 64))
}

// Stream asks ffprobe what a camera sends at input (a URL, or a file's
// path); rtspTransport, for an RTSP input, is "tcp" or "udp".
func Stream(ctx context.Context, ffprobe, input, rtspTransport string) (StreamInfo, error) {
	args := []string{"-v", "error"}
	if rtspTransport != "" {
		args = append(args, "-rtsp_transport", rtspTransport, "-timeout", "5000000")
	}
	args = append(args, "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height,avg_frame_rate,r_frame_rate", "-of", "json", input)
	res, err := job{bin: ffprobe, args: args, timeout: StreamTimeout}.run(ctx)
	if err != nil {
		return StreamInfo{}, fmt.Errorf("ffprobe: %w: %s", err, res.stderr)
	}
	var out struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			AvgFrameRate string `json:"avg_frame_rate"`
			RFrameRate   string `json:"r_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(res.stdout, &out); err != nil || len(out.Streams) == 0 {
		return StreamInfo{}, errors.New("ffprobe found no video stream")
	}
	st := out.Streams[0]
	info := StreamInfo{Codec: st.CodecName, Width: st.Width, Height: st.Height, FPS: Rate(st.AvgFrameRate)}
	if info.FPS <= 0 || info.FPS > 1000 {
		info.FPS = Rate(st.RFrameRate)
	}
	return info, nil
}

// Rate parses a frame rate as ffprobe writes it ("25/1", "30000/1001").
func Rate(s string) float64 {
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

// ErrUndecodable: ffprobe reports invalid data or decoding errors in the
// file, or decodes no frame of it (see Frames).
var ErrUndecodable = errors.New("no decodable video")

// The decode budget of a segment (DecodeBudget): a base, a multiple of the
// time the segment plays and a rate for its bytes, within bounds.
const (
	DecodeBase     = 2 * time.Minute
	DecodePerPlay  = 2             // seconds of budget per second of footage
	DecodeBytesPer = 1 << 20       // bytes of budget per second
	DecodeMax      = 2 * time.Hour // a bound on one try
)

// DecodeBudget is how long ffprobe may take to decode every frame of a
// segment that plays for d and holds bytes, on one core at the lowest
// priority beside the recording: 2 minutes, plus twice d, plus a second
// per MiB, at most 2 hours. A 600 s segment of 300 MB gets 27 minutes; a
// 10 s one of 1 MB, 2 min 21 s. (It scales with both: a high bit rate
// costs decoding time beyond its duration.)
func DecodeBudget(d time.Duration, bytes int64) time.Duration {
	d = max(d, 0) // times read backwards (a clock step) count as none
	b := DecodeBase + DecodePerPlay*d + time.Duration(max(bytes, 0)/DecodeBytesPer)*time.Second
	return min(b, DecodeMax)
}

// Frames has ffprobe decode every frame of the file's first video stream,
// on one core at the lowest priority, within timeout, and returns how many
// decode. What the file is to blame for wraps ErrUndecodable: ffprobe
// exits with an error it reports as invalid data or a decoding error
// (damage, see judge), or runs and decodes no frame. Anything else is the
// checker failing, not the file, and does not: ffprobe not started, killed
// by a signal, not done in time (ErrTimeout), ctx ending, and an exit
// whose error is the system's (an I/O error, no memory, no permission, the
// file not there) or is not recognised. A damage verdict also needs the
// file to read through whole here: ffprobe reports a read that failed
// mid-file as a short ("partial") file, as it would a truncated one.
func Frames(ctx context.Context, ffprobe, path string, timeout time.Duration) (int, error) {
	res, err := job{bin: ffprobe, timeout: timeout, idle: true, args: []string{"-v", "error", "-threads", "1",
		"-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=nb_read_frames", "-of", "default=noprint_wrappers=1:nokey=1", path}}.run(ctx)
	if Failed(err) {
		var ee *exec.ExitError
		errors.As(err, &ee)
		if damage, line := judge(ee.ExitCode(), res.stderr); !damage {
			return 0, fmt.Errorf("ffprobe %s exited %d, not on the file's data: %s", path, ee.ExitCode(), line)
		}
		if rerr := readThrough(ctx, path); rerr != nil {
			return 0, rerr
		}
		return 0, fmt.Errorf("%s: %w", firstLine(res.stderr), ErrUndecodable)
	}
	if err != nil { // ffprobe could not run: not the file's fault
		return 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	frames, _ := strconv.Atoi(strings.TrimSpace(string(res.stdout)))
	if frames <= 0 {
		if line, ok := systemError(res.stderr); ok {
			return 0, fmt.Errorf("ffprobe %s decoded no frame, on an error of the system: %s", path, line)
		}
		if rerr := readThrough(ctx, path); rerr != nil {
			return 0, rerr
		}
		msg := "no video frame"
		if s := firstLine(res.stderr); s != "" {
			msg += " (" + s + ")"
		}
		return 0, fmt.Errorf("%s: %w", msg, ErrUndecodable)
	}
	return frames, nil
}

// What ffprobe writes when the system failed it, not the file's data:
// strerror's words for the errnos a read, an open or an allocation gives
// (ffprobe prints "<path>: <strerror>" when it cannot open the input).
var systemErrors = []string{
	"input/output error",                  // EIO: a failing disk, a cable, a stale NFS or USB device
	"cannot allocate memory",              // ENOMEM, AVERROR(ENOMEM)
	"out of memory",                       // an allocator's own words
	"permission denied",                   // EACCES
	"operation not permitted",             // EPERM
	"no such file or directory",           // ENOENT: gone since the catalog looked
	"is a directory",                      // EISDIR
	"not a directory",                     // ENOTDIR
	"too many open files",                 // EMFILE, ENFILE
	"resource temporarily unavailable",    // EAGAIN
	"interrupted system call",             // EINTR
	"stale file handle",                   // ESTALE
	"no such device",                      // ENODEV, ENXIO ("no such device or address")
	"transport endpoint is not connected", // ENOTCONN: a FUSE mount gone
	"no space left on device",             // ENOSPC (ffprobe writes nothing, but a wrapper may)
}

// What ffprobe writes about the file's data: its demuxers' and decoders'
// reports of invalid data and decoding errors.
var dataErrors = []string{
	"invalid data found when processing input", // AVERROR_INVALIDDATA
	"moov atom not found",
	"partial file", // a sample past the end: truncated (or a read that failed: readThrough)
	"error while decoding",
	"invalid nal unit",
	"error splitting the input into nal units",
	"missing picture in access unit",
	"non-existing pps",
	"decode_slice_header error",
	"no frame!",
	"corrupt", // "Packet corrupt", "corrupt decoded frame"
	"invalid", // "Invalid atom size", "invalid box size", ... (not "Invalid argument": below)
	"end of file",
}

// judge says whether ffprobe's exit (its code and what it wrote) is
// damage: it reports invalid data or a decoding error, and nothing of the
// system's; and the line that says so. An exit above 128 is a wrapper's
// (or a shell's) report of a signal death (137 the OOM killer's SIGKILL,
// 134 an abort on a failed allocation): the checker's, as a signal is.
// Unrecognised words are not damage either: the file then goes up with
// the cheap structural check (decode-check: skipped) rather than to the
// quarantine on a guess.
func judge(code int, stderr string) (damage bool, line string) {
	if line, ok := systemError(stderr); ok {
		return false, line
	}
	if code > 128 {
		return false, fmt.Sprintf("exit %d: a signal's (%s)", code, firstLine(stderr))
	}
	for _, l := range strings.Split(stderr, "\n") {
		low := strings.ToLower(l)
		if strings.Contains(low, "invalid argument") {
			continue // AVERROR(EINVAL): options as often as data
		}
		for _, w := range dataErrors {
			if strings.Contains(low, w) {
				return true, strings.TrimSpace(l)
			}
		}
	}
	return false, firstLine(stderr)
}

// systemError finds, in ffprobe's stderr, a line that reports an error of
// the system rather than of the file's data.
func systemError(stderr string) (string, bool) {
	for _, l := range strings.Split(stderr, "\n") {
		low := strings.ToLower(l)
		for _, w := range systemErrors {
			if strings.Contains(low, w) {
				return strings.TrimSpace(l), true
			}
		}
	}
	return "", false
}

// readThrough reads the file whole, to confirm a damage verdict: a read
// that fails (a bad sector, a disk going away) is the system's error, and
// ffprobe would have reported it as a short file.
func readThrough(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read %s to confirm ffprobe's verdict: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := f.Read(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s to confirm ffprobe's verdict: %w", path, err)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Encoders returns ffmpeg -encoders' list.
func Encoders(ctx context.Context, ffmpeg string) (string, error) {
	res, err := job{bin: ffmpeg, timeout: EncodersTimeout, args: []string{"-hide_banner", "-encoders"}}.run(ctx)
	if err != nil {
		return "", fmt.Errorf("ffmpeg -encoders: %w", err)
	}
	return string(res.stdout), nil
}

// maxJPEG bounds a still.
const maxJPEG = 16 << 20

// Still has ffmpeg make a JPEG still of the first frame of the last second
// of the video at path (StillArgs), within timeout (StillTimeout when 0).
func Still(ctx context.Context, ffmpeg, path string, maxWidth int, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		timeout = StillTimeout
	}
	res, err := job{bin: ffmpeg, args: StillArgs(path, maxWidth), timeout: timeout, maxOut: maxJPEG}.run(ctx)
	switch {
	case errors.Is(err, ErrTimeout):
		return nil, fmt.Errorf("ffmpeg still of %s: not done within %v", path, timeout)
	case err != nil:
		return nil, fmt.Errorf("ffmpeg still of %s: %w: %s", path, err, res.stderr)
	}
	b := res.stdout
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, fmt.Errorf("ffmpeg still of %s: no JPEG (%d bytes): %s", path, len(b), res.stderr)
	}
	return b, nil
}

// StillArgs is ffmpeg's command line for the still of the video at path:
// the first frame of its last second (-sseof; from the start of a shorter
// video), scaled down to maxWidth, as one JPEG on stdout.
func StillArgs(path string, maxWidth int) []string {
	return []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-sseof", "-1", "-i", path,
		"-map", "0:v:0", "-frames:v", "1",
		"-vf", "scale=w='min(iw," + strconv.Itoa(maxWidth) + ")':h=-2",
		"-c:v", "mjpeg", "-q:v", "5", "-f", "image2pipe", "-"}
}

// InspectTimeout bounds Inspect.
const InspectTimeout = 2 * time.Minute

// Inspect has ffprobe decode every frame of path's first video stream and
// show entries (ffprobe's -show_entries, such as
// "stream=codec_name,nb_read_frames:format=duration"), and returns its JSON
// for the caller to read. For tests and tools that check what a file holds.
func Inspect(ctx context.Context, ffprobe, path, entries string) ([]byte, error) {
	res, err := job{bin: ffprobe, timeout: InspectTimeout, maxOut: 256 << 20, args: []string{"-v", "error", "-count_frames",
		"-select_streams", "v:0", "-show_entries", entries, "-of", "json", path}}.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w %s", path, err, res.stderr)
	}
	return res.stdout, nil
}
