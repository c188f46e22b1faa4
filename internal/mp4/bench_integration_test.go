//go:build integration

package mp4

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// benchSegment is a 600 s segment (the design note's videoDuration) as
// cctvd records it: 640x360 at 10 fps, a keyframe every 2 s, a fragment
// every half second: 6000 samples in 1200 fragments. Written by real
// ffmpeg once and kept in the temporary directory, so that runs before and
// after a change read the same file.
func benchSegment(b *testing.B) []byte {
	b.Helper()
	path := filepath.Join(os.TempDir(), "cctvd-mp4-bench-600s.mp4")
	if data, err := os.ReadFile(path); err == nil {
		return data
	}
	tmp := path + ".part"
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=10",
		"-t", "600", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-g", "20", "-pix_fmt", "yuv420p",
		"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000", tmp).CombinedOutput()
	if err != nil {
		b.Fatalf("ffmpeg: %v: %s", err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkRead600s parses a 600 s segment: streamed (Read, as from S3:
// every byte passes) and by its headers alone (ReadAt, a local file).
func BenchmarkRead600s(b *testing.B) {
	data := benchSegment(b)
	seg, _, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d bytes, %d samples", len(data), len(seg.Samples))
	for _, bc := range []struct {
		name string
		read func() error
	}{
		{"Read", func() error { _, _, err := Read(bytes.NewReader(data), int64(len(data))); return err }},
		{"ReadAt", func() error { _, err := ReadAt(bytes.NewReader(data), int64(len(data))); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuild600s lays out the joined file of a 600 s segment (its
// moov with the sample tables).
func BenchmarkBuild600s(b *testing.B) {
	data := benchSegment(b)
	seg, _, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(Join{Parts: []Part{{Seg: seg, Last: len(seg.Samples)}}, End: 1 << 62}, memFiles{data}); err != nil {
			b.Fatal(err)
		}
	}
}
