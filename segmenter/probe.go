package segmenter

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

	"github.com/cctvd/cctvd/internal/childenv"
)

// Errors from probeDuration.
var (
	// ErrNoVideo: the file is not a playable video (corrupt, truncated
	// before its header). It is quarantined.
	ErrNoVideo = errors.New("no playable video")
	// ErrNoFrames: a valid header and not one frame that decodes, as when
	// ffmpeg opened the segment and died before its first fragment was
	// written whole. There is no footage in it to keep.
	ErrNoFrames = errors.New("no frames")
)

// probeDuration asks ffprobe how long a (possibly truncated) segment plays,
// and decodes its first frame: a fragmented MP4 cut inside its first
// fragment has a duration and not one frame that plays.
func probeDuration(ffprobe, path string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "v:0",
		"-read_intervals", "%+#1", "-count_frames",
		"-show_entries", "format=duration:stream=codec_type,nb_read_frames", "-of", "json", path)
	cmd.Env = childenv.Minimal() // not the daemon's token or AWS credentials
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if ctx.Err() != nil || (errors.As(err, &exitErr) && !exitErr.Exited()) {
		// Timed out, or killed (the OOM killer, a slow disk): not the
		// file's fault; it is looked at again on the next pass.
		return 0, fmt.Errorf("ffprobe %s: did not finish: %w", path, err)
	}
	if errors.As(err, &exitErr) {
		return 0, fmt.Errorf("ffprobe %s: %s: %w", path, strings.TrimSpace(stderr.String()), ErrNoVideo)
	}
	if err != nil { // ffprobe could not run: not the file's fault
		return 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	var res struct {
		Streams []struct {
			CodecType    string `json:"codec_type"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	video, frames := false, false
	for _, st := range res.Streams {
		video = video || st.CodecType == "video"
		frames = frames || (st.NbReadFrames != "" && st.NbReadFrames != "0")
	}
	if !video {
		return 0, fmt.Errorf("ffprobe %s: %w", path, ErrNoVideo)
	}
	if !frames {
		return 0, fmt.Errorf("ffprobe %s: the first frame does not decode: %w", path, ErrNoFrames)
	}
	secs, err := strconv.ParseFloat(res.Format.Duration, 64)
	if err != nil || secs <= 0 {
		return 0, fmt.Errorf("ffprobe %s: duration %q: %w", path, res.Format.Duration, ErrNoFrames)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// processRunning reports whether pid is alive and is the ffmpeg of run id
// (its command line names the run), so a reused pid is not mistaken for it.
func processRunning(pid int, runID string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(runID))
}
