package supervisor

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/staging"
)

// TestEpochSettledReachesTheDiskAfterAFailedWrite (review3): the segmenter
// names nothing of a live run until its metadata on disk says
// EpochSettled (segmenter.go, "unsettled"). progressLine sets it only at
// the second advancing block (settles) and writes the metadata again only
// when the epoch drifts more than 100 ms; writeMeta logs a failed write
// and keeps the change in memory. So when the one write at block 2 fails
// (a moment of ENOSPC or EIO), the file never says settled while the
// stream is steady: every segment of the run stays in staging, not
// catalogued and not uploaded, until ffmpeg exits (hours or days).
func TestEpochSettledReachesTheDiskAfterAFailedWrite(t *testing.T) {
	save := t.TempDir()
	wall := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var mono time.Duration
	c := newCamera(config.Camera{CameraName: "cam1", VideoFeedID: "xx"}, Config{SavePath: save, Owner: "me"},
		Deps{Log: zerolog.Nop(), Now: func() time.Time { return wall.Add(mono) }, Mono: func() time.Duration { return mono }}, nil, true)
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a := c.newAttempt(wall)
	a.wd = newWatchdog(time.Minute, 0)
	block := func(n int) {
		mono = time.Duration(n) * time.Second
		for _, l := range []string{fmt.Sprintf("frame=%d", n*25), fmt.Sprintf("out_time_us=%d", (mono - 200*time.Millisecond).Microseconds()), "progress=continue"} {
			a.progressLine(l)
		}
	}
	meta := a.run.MetaPath()
	block(1) // the first estimate, written
	if m, err := staging.ReadMeta(meta); err != nil || m.EpochSettled {
		t.Fatalf("after the first block: %+v, %v", m, err)
	}
	// The write at the second block fails (the folder cannot take its
	// temporary file); the file of the first block stays.
	if err := os.Rename(c.dir, c.dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	block(2)
	os.Remove(c.dir) // the disk is fine again
	if err := os.Rename(c.dir+".away", c.dir); err != nil {
		t.Fatal(err)
	}
	for n := 3; n <= 60; n++ {
		block(n) // a steady stream: the epoch does not move
	}
	m, err := staging.ReadMeta(meta)
	if err != nil {
		t.Fatalf("no metadata on disk after 60 blocks: %v", err)
	}
	if !m.EpochSettled {
		t.Errorf("the metadata on disk never says EpochSettled after one failed write (in memory: %v): the segmenter holds every segment of the run in staging", a.meta.EpochSettled)
	}
}
