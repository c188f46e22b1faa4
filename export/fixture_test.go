//go:build integration

package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/fixture"
	"github.com/cctvd/cctvd/internal/mp4"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// The recordings the tests export: real ffmpeg copying the real test
// camera's H.264 stream (640x360 at 10 fps, a keyframe every 2 s) into
// fragmented MP4 segments of 4 s, with the segment muxer options cctvd
// records with; then laid out as if they had been recorded from 14:00:00
// on 2026-01-06, back to back.
const (
	segmentOptions = "movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=500000:flush_packets=1"
	bucket         = "exports"
	gop            = 2 * time.Second
	frame          = 100 * time.Millisecond
)

var fx struct {
	once  sync.Once
	err   error
	dir   string
	minio *fixture.MinIO
	cam   *fixture.Camera
	recs  []recording
}

// recording is one recorded segment and where it sits on the timeline.
type recording struct {
	data       []byte
	start, end time.Time
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fx.minio != nil {
		fx.minio.Stop()
	}
	if fx.cam != nil {
		fx.cam.Stop()
	}
	if fx.dir != "" {
		os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}

// fixtures records the footage and starts MinIO, once for the package.
func fixtures(t *testing.T) {
	t.Helper()
	fx.once.Do(func() { fx.err = setUp() })
	if fx.err != nil {
		t.Fatal(fx.err)
	}
}

func setUp() error {
	if err := fixture.CheckTools(); err != nil {
		return err
	}
	for _, kv := range os.Environ() { // the machine's AWS settings must not change results
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
	dir, err := os.MkdirTemp("", "cctvd-export-test-")
	if err != nil {
		return err
	}
	fx.dir = dir
	if fx.minio, err = fixture.StartMinIO(filepath.Join(dir, "minio")); err != nil {
		return err
	}
	if err := fx.minio.CreateBucket(bucket); err != nil {
		return err
	}
	if fx.cam, err = fixture.StartCamera(fixture.CameraOptions{Mounts: map[string]string{"/door": "640x360@10"}}); err != nil {
		return err
	}
	rec := filepath.Join(dir, "rec")
	os.MkdirAll(rec, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp",
		"-i", fx.cam.URL("/door"), "-t", "15", "-map", "0:v:0", "-an", "-c:v", "copy",
		"-f", "segment", "-segment_time", "4", "-reset_timestamps", "1", "-segment_format", "mp4",
		"-segment_format_options", segmentOptions, filepath.Join(rec, "seg%03d.mp4")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("record the test camera: %v: %s", err, out)
	}
	fx.cam.Stop()
	fx.cam = nil
	paths, _ := filepath.Glob(filepath.Join(rec, "seg*.mp4"))
	start := t0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		seg, _, err := mp4.Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		last := seg.Samples[len(seg.Samples)-1]
		ticks := last.DTS + int64(last.Duration) - seg.Samples[0].DTS
		end := start.Add(time.Duration(ticks * int64(time.Second) / int64(seg.Track.Timescale))).Truncate(time.Millisecond)
		fx.recs = append(fx.recs, recording{data: data, start: start, end: end})
		start = end
	}
	if len(fx.recs) < 4 {
		return fmt.Errorf("recorded %d segments, want 4 or more", len(fx.recs))
	}
	return nil
}

// box lays the recordings out on a box: files under savePath and objects
// under prefix in the bucket, as cctvd's uploader leaves them.
type box struct {
	save, prefix string
	segs         []Segment
}

func newBox(t *testing.T) *box {
	t.Helper()
	fixtures(t)
	b := &box{save: t.TempDir(), prefix: "t/" + strings.ReplaceAll(t.Name(), "/", "-")}
	for _, r := range fx.recs {
		name := segment.Name("door", "f1", r.start, r.end, 0)
		rel := layout.DayRel("door", r.start) + "/" + name
		path := filepath.Join(b.save, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, r.data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha(r.data)
		key := uploader.Key(b.prefix, rel)
		put(t, key, r.data, r.start, r.end, sum)
		b.segs = append(b.segs, Segment{Camera: "door", FeedID: "f1", Start: r.start, End: r.end, Name: name, Key: key,
			Bytes: int64(len(r.data)), SHA256: sum, Uploaded: true, Path: path})
	}
	return b
}

// put stores an object with the metadata the uploader gives it.
func put(t *testing.T, key string, data []byte, start, end time.Time, sum string) {
	t.Helper()
	_, err := fx.minio.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		Metadata: map[string]string{uploader.MetaCamera: "door", uploader.MetaFeedID: "f1",
			uploader.MetaStart: start.UTC().Format(uploader.MetaTimeLayout), uploader.MetaEnd: end.UTC().Format(uploader.MetaTimeLayout),
			uploader.MetaSHA256: sum},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// remote returns the segments as if their local files were gone.
func remote(segs []Segment) []Segment {
	out := append([]Segment(nil), segs...)
	for i := range out {
		out[i].Path = ""
	}
	return out
}

func builder() *Builder {
	return &Builder{S3: fx.minio.Client(), Bucket: bucket, Version: "test", Log: zerolog.Nop()}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha(data)
}

// save writes a clip and its manifest into a new folder.
func save(t *testing.T, c *Clip) (string, Manifest) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clip.mp4")
	m, err := c.Save(path, false)
	if err != nil {
		t.Fatal(err)
	}
	return path, m
}

// lavfi has ffmpeg write one fragmented segment of a test pattern.
func lavfi(t *testing.T, size string, secs int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seg.mp4")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size="+size+":rate=10",
		"-t", fmt.Sprint(secs), "-c:v", "libx264", "-preset", "ultrafast", "-g", "20", "-pix_fmt", "yuv420p",
		"-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	data, _ := os.ReadFile(path)
	return data
}
