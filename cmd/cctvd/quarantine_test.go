//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/alerts"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/segment"
)

// TestQuarantineTrimmedUnderPressure: savePath (50 kB limit, the default
// bound of 2% of it) holds a quarantine far over its bound: a segment the
// uploader found damaged (its row says so; S3 lacks it) and an empty file
// the segmenter could not salvage (no row). Under that pressure, with no
// uploaded recording to delete, both go; the damaged copy's deletion is
// recorded in its row, warned about, counted in
// cctvd_retention_deletions_total and raises deleted-before-upload, as any
// deletion of footage S3 lacked; the empty one held no footage: counted,
// no alert.
func TestQuarantineTrimmedUnderPressure(t *testing.T) {
	s := newSetup(t, 60)
	hook := newReceiver(t)
	s.extra = alertsBlock("60s", []string{hook.url()}, nil)
	stateDir := t.TempDir()
	s.storage = fmt.Sprintf(`, "stateDir": %q`, stateDir)
	cfg := strings.Replace(readFile(t, s.writeConfig(t)), `"clearWhenFilePathReachGB": 1`, `"clearWhenFilePathReachGB": 0.00005`, 1)
	path := filepath.Join(t.TempDir(), "tiny.json")
	os.WriteFile(path, []byte(cfg), 0o600)

	qdir := layout.QuarantineDir(s.savePath, "door")
	os.MkdirAll(qdir, 0o755)
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	name := segment.Name("door", "f1", start, start.Add(10*time.Minute), 0)
	damaged := filepath.Join(qdir, name)
	body := make([]byte, 80_000)
	rand.Read(body)
	os.WriteFile(damaged, body, 0o644)
	unsalvaged := filepath.Join(qdir, "R1-00003.mp4")
	os.WriteFile(unsalvaged, nil, 0o644)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, layout.Catalog(stateDir), s.savePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	rel := layout.DayRel("door", start) + "/" + name
	r, err := cat.Add(ctx, segment.Segment{Camera: "door", FeedID: "f1", Start: start, End: start.Add(10 * time.Minute),
		Path: filepath.Join(s.savePath, rel), Size: 90_000}, "rec/2025/"+rel)
	if err == nil {
		err = cat.MarkQuarantined(ctx, r.ID, damaged, "the file has 80000 bytes, fewer than the 90000 it had when it closed")
	}
	cat.Close()
	if err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, "run", "--config", path)
	c := newClient(t, d, "")
	line, _ := d.await(0, 60*time.Second, msgIs("deleted a quarantined file S3 does not have: the quarantine is over its bound and space had to be freed"))
	if line["file"] != damaged || line["level"] != "warn" {
		t.Errorf("logged %v", line)
	}
	d.await(0, 30*time.Second, msgIs("deleted a quarantined file that held no footage: the quarantine is over its bound"))
	for _, p := range []string{damaged, unsalvaged} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", filepath.Base(p), err)
		}
	}
	if v := metricValue(scrape(t, c), "cctvd_retention_deletions_total", map[string]string{"kind": "not_uploaded"}); v != 2 {
		t.Errorf("cctvd_retention_deletions_total{kind=not_uploaded} = %v, want 2", v)
	}
	// The empty file went first (it cost no footage) and raised nothing:
	// the webhook's first deleted-before-upload is the damaged copy's.
	ev := hook.await("deleted-before-upload", 30*time.Second, isType(alerts.DeletedBeforeUpload, "door"))
	if !strings.Contains(ev.Message, name) {
		t.Errorf("deleted-before-upload says %q, want it to name %s", ev.Message, name)
	}
	for _, hr := range hook.taken() {
		if hr.ev.Type == alerts.DeletedBeforeUpload && hr.ev.ID != ev.ID {
			t.Errorf("another deleted-before-upload: %+v", hr.ev)
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	cat, err = catalog.Open(ctx, layout.Catalog(stateDir), s.savePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if row, _ := cat.Get(ctx, r.ID); row.Local != catalog.Deleted || row.DeleteCause != retention.CauseQuarantineLimit {
		t.Errorf("the damaged copy's row: %s (%s), want deleted (%s)", row.Local, row.DeleteCause, retention.CauseQuarantineLimit)
	}
}
