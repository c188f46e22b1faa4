package segmenter

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []row
		wantErr bool
	}{
		{"ffmpeg rows", "R_00000.mp4,0.000000,6.000000\nR_00001.mp4,6.000000,12.000000\n",
			[]row{{"R_00000.mp4", 0, 0, 6}, {"R_00001.mp4", 1, 6, 12}}, false},
		{"empty", "", nil, false},
		{"not a segment", "notes.txt,0,1\n", nil, true},
		{"end before start", "R_00000.mp4,5,1\n", nil, true},
		{"two fields", "R_00000.mp4,5\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseList([]byte(tt.in))
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("parseList = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestWallTimes(t *testing.T) {
	epoch := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	mtime := time.Date(2026, 1, 6, 13, 0, 0, 0, time.UTC)
	s, e := wallTimes(staging.Meta{Epoch: epoch}, 6, 12, mtime)
	if !s.Equal(epoch.Add(6*time.Second)) || !e.Equal(epoch.Add(12*time.Second)) {
		t.Errorf("with epoch: %v - %v", s, e)
	}
	s, e = wallTimes(staging.Meta{}, 6, 12, mtime)
	if !e.Equal(mtime) || !s.Equal(mtime.Add(-6*time.Second)) {
		t.Errorf("without epoch: %v - %v, want it to end at the mtime", s, e)
	}
}

// makeClip records seconds of a test pattern as ffmpeg's segment muxer
// writes it (fragmented MP4).
func makeClip(t *testing.T, path string, seconds int) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=5", "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-pix_fmt", "yuv420p",
		"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
}

// runSegmenterOnce runs a segmenter through its start-up pass and returns
// the segments it reported.
func runSegmenterOnce(t *testing.T, cfg Config) []segment.Segment {
	t.Helper()
	var got []segment.Segment
	s := New(cfg, Deps{Log: zerolog.Nop(), OnSegment: func(sg segment.Segment) { got = append(got, sg) }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run makes its start-up pass and a last pass, then returns
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return got
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, keep float64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(float64(fi.Size())*keep)); err != nil {
		t.Fatal(err)
	}
}

// headerOnly writes what ffmpeg leaves when it dies right after opening a
// segment: a valid fragmented-MP4 header and no fragment.
func headerOnly(t *testing.T, path string) {
	t.Helper()
	makeClip(t, path, 1)
	data, _ := os.ReadFile(path)
	i := strings.Index(string(data), "moof")
	if i < 4 {
		t.Fatal("no moof box in the clip")
	}
	write(t, path, string(data[:i-4]))
}

// TestMeaningfulEvents: of what the camera folders' watch lets through (a
// file created, closed after writing, renamed into place), the run's files
// count; the metadata's temporary file and strangers do not.
func TestMeaningfulEvents(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"R_00001.mp4", true}, // the next segment opened, or a segment closed
		{"R.csv", true},       // the list created or closed
		{"R.json", true},      // metadata renamed into place
		{".R.json.tmp-123", false},
		{"notes.txt", false},
	}
	for _, tt := range tests {
		if got := meaningful(tt.name); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// liveFFmpeg starts a process standing for a live run's ffmpeg (its
// command line names the run, as ffmpeg's output pattern does) and returns
// its pid; it is killed when the test ends.
func liveFFmpeg(t *testing.T, runID string) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", "sleep 300; :", runID)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}
