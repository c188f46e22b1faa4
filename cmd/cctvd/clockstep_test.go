//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/gaplog"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// TestClockStepBackLosesNothing runs the daemon in this process (run(),
// with a wall clock the test steps; the machine's clock is not touched)
// against the real camera and MinIO. The catalog already holds, uploaded
// and deleted, every name the next minute will take an hour ago (as after
// a day of recording with clearAfterUpload). Mid-recording the wall clock
// steps back an hour: the step is logged, counted and in the gap log; the
// segments after it are named on the new clock, each under a name of its
// own ("-N"), cataloged as new rows and uploaded; no gap is unexplained or
// negative.
func TestClockStepBackLosesNothing(t *testing.T) {
	s := newSetup(t, 2)
	cfg := s.writeConfig(t)
	var offset atomic.Int64
	wall := func() time.Time { return time.Now().Round(0).Add(time.Duration(offset.Load())) }

	d := &proc{t: t, added: make(chan struct{}, 1), exit: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		err := run(ctx, []string{"run", "--config", cfg}, &lineWriter{d: d}, io.Discard, func(string) string { return "" }, wall)
		d.exit <- err
		close(d.added)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := d.wait(60 * time.Second); err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
	defer stop()
	api := newClient(t, d, "")

	_, i := d.await(0, 30*time.Second, msgIs("recording"))
	for range 3 {
		_, i = d.await(i+1, 30*time.Second, msgIs("segment closed"))
	}

	// An hour ago, on the clock about to be set: every name of the next
	// minute, recorded, uploaded and deleted.
	cat, err := catalog.Open(context.Background(), filepath.Join(s.savePath, ".cctvd", layout.CatalogName), s.savePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	back := time.Now().Add(-time.Hour).Truncate(time.Second)
	var seeded int64
	for sec := -6; sec <= 60; sec++ {
		start := back.Add(time.Duration(sec) * time.Second)
		for dur := 1; dur <= 3; dur++ {
			end := start.Add(time.Duration(dur) * time.Second)
			rel := layout.DayRel("door", start) + "/" + segment.Name("door", "f1", start, end, 0)
			r, err := cat.Add(context.Background(), segment.Segment{Camera: "door", FeedID: "f1", Start: start, End: end,
				Path: filepath.Join(s.savePath, rel), Size: 1000}, "rec/2025/"+rel)
			if err != nil {
				t.Fatal(err)
			}
			cat.MarkUploaded(context.Background(), r.ID, "etag", "test")
			cat.MarkLocalDeleted(context.Background(), r.ID, catalog.CauseClearAfterUpload)
			seeded = max(seeded, r.ID)
		}
	}

	stepAt := time.Now()
	offset.Store(int64(-time.Hour))
	line, _ := d.await(i, 10*time.Second, msgIs("the wall clock stepped: segment names follow the new time"))
	if line["direction"] != "back" || line["level"] != "warn" {
		t.Errorf("step logged as %v", line)
	}
	var after []string // names of segments closed after the step, on the new clock
	for len(after) < 6 {
		line, i = d.await(i+1, 30*time.Second, msgIs("segment closed"))
		name := line["segment"].(string)
		info, err := segment.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Start.Before(stepAt.Add(-30 * time.Minute)) {
			after = append(after, name)
			if info.Seq == 0 {
				t.Errorf("%s took a name the catalog holds", name)
			}
		} else if time.Since(stepAt) > 3*time.Second {
			t.Errorf("%s, closed %v after the step, is named on the old clock", name, time.Since(stepAt))
		}
	}

	// Every segment closed so far reaches S3 (the one the stop finalises
	// goes up at the next start).
	closed := d.all(msgIs("segment closed"))
	for _, l := range closed {
		name := l["segment"]
		d.await(0, 60*time.Second, func(m map[string]any) bool { return m["message"] == "uploaded and verified" && m["segment"] == name })
	}
	fams := scrape(t, api)
	if v := metricValue(fams, "cctvd_clock_steps_total", map[string]string{"direction": "back"}); v != 1 {
		t.Errorf("cctvd_clock_steps_total{direction=back} = %v, want 1", v)
	}
	stop()
	if strings.Contains(d.output(), "BUG") {
		t.Errorf("a path conflict reached the catalog:\n%s", d.output())
	}

	// Each segment is a row of its own, uploaded, byte-identical in S3.
	objects := map[string]int64{}
	for _, o := range s.minio.List("test-bucket", "rec/2025/") {
		objects[o.Key] = o.Size
	}
	for _, l := range closed {
		name := l["segment"].(string)
		info, _ := segment.Parse(name)
		path := filepath.Join(s.savePath, layout.DayRel("door", info.Start), name)
		r, err := cat.ByPath(context.Background(), path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if (info.Seq > 0 && r.ID <= seeded) || r.Upload != catalog.Uploaded || r.Local != catalog.Present || r.Bytes != int64(l["bytes"].(float64)) {
			t.Errorf("%s: row %+v (seeded rows end at id %d)", name, r, seeded)
		}
		head, err := s.minio.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("test-bucket"), Key: aws.String(r.Key)})
		if err != nil || objects[r.Key] != r.Bytes || head.Metadata["sha256"] != fileSHA(t, path) {
			t.Errorf("%s: object %s: %d bytes (row %d), %v", name, r.Key, objects[r.Key], r.Bytes, err)
		}
	}
	gaps, err := cat.Gaps(context.Background(), "door", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, g := range gaps {
		switch {
		case g.Cause == gaplog.CauseClockStep:
			steps++
			if d := g.End.Sub(g.Start); (d-time.Hour).Abs() > 3*time.Second || (g.End.Sub(stepAt)).Abs() > 3*time.Second {
				t.Errorf("clock-step entry %v to %v, want the hour before the step", g.Start, g.End)
			}
		case g.Cause == gaplog.CauseUnexplained:
			t.Errorf("unexplained gap %+v", g)
		case !g.End.IsZero() && g.End.Before(g.Start):
			t.Errorf("negative gap %+v", g)
		}
	}
	if steps != 1 {
		t.Errorf("%d clock-step entries in %+v, want 1", steps, gaps)
	}
	t.Logf("after the step: %v", after)
	assertNoSecret(t, d.output(), s.minio.SecretKey)
}

// lineWriter feeds an in-process daemon's JSON log lines to a proc, as the
// subprocess' stdout does.
type lineWriter struct {
	d   *proc
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		var m map[string]any
		_ = json.Unmarshal(w.buf[:i], &m)
		w.d.raw.Write(w.buf[:i+1])
		if m != nil {
			w.d.lines = append(w.d.lines, m)
		}
		w.buf = w.buf[i+1:]
	}
	w.d.mu.Unlock()
	select {
	case w.d.added <- struct{}{}:
	default:
	}
	return len(p), nil
}

// all returns every log line so far that matches.
func (d *proc) all(match func(map[string]any) bool) []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []map[string]any
	for _, l := range d.lines {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}
