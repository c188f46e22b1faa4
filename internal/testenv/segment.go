package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// MakeSegment writes a segment as cctvd's ffmpeg does (H.264 in a
// fragmented MP4) at path, from a lavfi source graph such as
// "color=c=red:s=320x240:r=5:d=3", with real ffmpeg.
func MakeSegment(t testing.TB, path, lavfi string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", lavfi, "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p",
		"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000", path).CombinedOutput()
	if err != nil {
		t.Fatalf("make segment %s: %v\n%s", path, err, out)
	}
}
