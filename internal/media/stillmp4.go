package media

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"
)

// StillFromMP4 is Still for a small MP4 held in memory (an init segment
// and the fragment of a keyframe, from a segment still being written),
// fed to ffmpeg on its standard input: its first frame, scaled down to
// maxWidth, as one JPEG.
func StillFromMP4(ctx context.Context, ffmpeg string, mp4 []byte, maxWidth int, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		timeout = StillTimeout
	}
	res, err := job{bin: ffmpeg, args: StillFromMP4Args(maxWidth), timeout: timeout, maxOut: maxJPEG, stdin: bytes.NewReader(mp4)}.run(ctx)
	switch {
	case err != nil && res.stderr == "":
		return nil, fmt.Errorf("ffmpeg still of the open segment: %w", err)
	case err != nil:
		return nil, fmt.Errorf("ffmpeg still of the open segment: %w: %s", err, res.stderr)
	}
	b := res.stdout
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, fmt.Errorf("ffmpeg still of the open segment: no JPEG (%d bytes): %s", len(b), res.stderr)
	}
	return b, nil
}

// StillFromMP4Args is ffmpeg's command line for StillFromMP4: the MP4 on
// standard input, one JPEG on standard output.
func StillFromMP4Args(maxWidth int) []string {
	return []string{"-hide_banner", "-loglevel", "error",
		"-f", "mp4", "-i", "pipe:0",
		"-map", "0:v:0", "-frames:v", "1",
		"-vf", "scale=w='min(iw," + strconv.Itoa(maxWidth) + ")':h=-2",
		"-c:v", "mjpeg", "-q:v", "5", "-f", "image2pipe", "-"}
}
