//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// writeVideo writes a real MP4 (two seconds of a test pattern, as ffmpeg's
// segment muxer writes it) at path, padded with random bytes to size if
// it is shorter: the uploader decodes files it did not see close, and the
// padding keeps big test files cheap to make.
func writeVideo(t *testing.T, path string, size int64) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=5", "-t", "2",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-pix_fmt", "yuv420p",
		"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Size() < size {
		if _, err := io.CopyN(f, rand.Reader, size-fi.Size()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDamagedAndConflictingSegments: cctvd starts on a savePath where a
// power cut left an empty segment, and beside it a segment whose key S3
// already holds with other content. The empty file is quarantined (never
// uploaded), its interval is a gap with cause corrupt; the other goes up
// beside the object S3 holds, which is kept; the API and the metrics say so.
func TestDamagedAndConflictingSegments(t *testing.T) {
	s := newSetup(t, 60)
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	dir := filepath.Join(s.savePath, layout.DayRel("door", start))
	emptied := segment.Name("door", "f1", start, start.Add(10*time.Minute), 0)
	other := segment.Name("door", "f1", start.Add(10*time.Minute), start.Add(20*time.Minute), 0)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, emptied), nil, 0o644)
	writeVideo(t, filepath.Join(dir, other), 0)
	otherKey := "rec/2025/door/2026-01-06/" + other
	planted := []byte("footage of another recorder")
	if _, err := s.minio.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("test-bucket"),
		Key: aws.String(otherKey), Body: bytes.NewReader(planted)}); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, "run", "--config", s.writeConfig(t))
	c := newClient(t, d, "")
	d.await(0, 60*time.Second, func(m map[string]any) bool {
		return m["message"] == "uploaded and verified" && m["segment"] == other
	})
	d.await(0, 60*time.Second, func(m map[string]any) bool {
		msg, _ := m["message"].(string)
		return strings.HasPrefix(msg, "damaged file moved to quarantine") && m["segment"] == emptied
	})

	var list struct {
		Recordings []struct {
			Name        string `json:"name"`
			S3Key       string `json:"s3Key"`
			ConflictKey string `json:"conflictKey"`
			Verified    string `json:"verified"`
			Upload      string `json:"upload"`
			Local       string `json:"local"`
			DeleteCause string `json:"deleteCause"`
		} `json:"recordings"`
	}
	c.json("GET", "/api/v1/recordings?camera=door&to=2026-01-07T00:00:00Z", 200, &list)
	seen := 0
	for _, r := range list.Recordings {
		switch r.Name {
		case emptied:
			seen++
			if r.Local != "quarantined" || r.DeleteCause != "corrupt" || r.Upload == "uploaded" {
				t.Errorf("emptied segment: %+v", r)
			}
		case other:
			seen++
			if r.ConflictKey != otherKey || !strings.HasPrefix(r.S3Key, strings.TrimSuffix(otherKey, ".mp4")+".conflict-") ||
				r.Upload != "uploaded" || r.Verified != "checksum-sha256" {
				t.Errorf("conflicting segment: %+v", r)
			}
		}
	}
	if seen != 2 {
		t.Errorf("recordings: %+v", list.Recordings)
	}
	var gaps struct {
		Gaps []struct {
			Start, End time.Time
			Cause      string
		} `json:"gaps"`
	}
	c.json("GET", "/api/v1/cameras/door/gaps?from=2026-01-06T00:00:00Z&to=2026-01-07T00:00:00Z", 200, &gaps)
	corrupt := 0
	for _, g := range gaps.Gaps { // and a daemon-down gap from 12:20 to this start
		if g.Cause == "corrupt" {
			corrupt++
			if !g.Start.Equal(start) || !g.End.Equal(start.Add(10*time.Minute)) {
				t.Errorf("corrupt gap %v - %v", g.Start, g.End)
			}
		}
	}
	if corrupt != 1 {
		t.Errorf("gaps: %+v", gaps.Gaps)
	}
	fams := scrape(t, c)
	if v := metricValue(fams, "cctvd_upload_conflicts_total", nil); v != 1 {
		t.Errorf("cctvd_upload_conflicts_total = %v", v)
	}
	if v := metricValue(fams, "cctvd_upload_quarantined_total", map[string]string{"camera": "door"}); v != 1 {
		t.Errorf("cctvd_upload_quarantined_total = %v", v)
	}
	if v := metricValue(fams, "cctvd_upload_verification_failures_total", nil); v != 0 {
		t.Errorf("cctvd_upload_verification_failures_total = %v", v)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	out, err := s.minio.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("test-bucket"), Key: aws.String(otherKey)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, planted) {
		t.Error("the object S3 held was overwritten")
	}
	for _, o := range s.minio.List("test-bucket", "rec/2025/door/2026-01-06/"+strings.TrimSuffix(emptied, ".mp4")) {
		t.Errorf("the empty file went up: %+v", o)
	}
	if _, err := os.Stat(filepath.Join(s.savePath, layout.QuarantineName, "door", emptied)); err != nil {
		t.Errorf("not in the quarantine: %v", err)
	}
}
