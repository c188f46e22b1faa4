//go:build integration

package media

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestFramesOnRealFiles: real ffprobe on real files. A good segment
// decodes; what is damaged (random bytes, zeros, cut inside a fragment, a
// header without a frame) is the file's fault; what cannot be read (a
// directory, a file not there) is the checker's.
func TestFramesOnRealFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mp4")
	// A fragmented MP4 as cctvd records it: 4 s at 5 fps.
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=5", "-t", "4",
		"-c:v", "libx264", "-g", "5", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", good).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	random := make([]byte, 50000)
	rand.Read(random)
	folder := filepath.Join(dir, "folder.mp4")
	os.Mkdir(folder, 0o755)
	ctx := context.Background()
	for _, tt := range []struct {
		name       string
		path       string
		undecoding bool
	}{
		{"random bytes", write("random.mp4", random), true},
		{"zeros", write("zeros.mp4", make([]byte, 50000)), true},
		{"cut inside its first fragment", write("cut.mp4", data[:3000]), true},
		{"a header without a frame", write("header.mp4", data[:800]), true},
		{"a directory", folder, false},
		{"not there", filepath.Join(dir, "gone.mp4"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Frames(ctx, "ffprobe", tt.path, 2*time.Minute)
			if err == nil || errors.Is(err, ErrUndecodable) != tt.undecoding || errors.Is(err, ErrTimeout) {
				t.Errorf("Frames = %d, %v; want undecodable %t", n, err, tt.undecoding)
			}
		})
	}
	if n, err := Frames(ctx, "ffprobe", good, 2*time.Minute); n != 20 || err != nil {
		t.Errorf("the good segment: %d frames, %v; want 20", n, err)
	}
}
