//go:build integration

package uploader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/segment"
)

// decodeStandIn writes a stand-in ffprobe (a stand-in, named as such: a
// real ffprobe cannot be made to hang or die on cue) that acts by the
// camera in the file's name: "hang" waits until the file release exists
// in dir, then rejects the file as real ffprobe rejects garbage (exit 1);
// "dies" is killed by a signal at once (the checker failing, not the
// file); any other camera gets the real ffprobe.
func decodeStandIn(t *testing.T) (probe, dir string) {
	t.Helper()
	dir = t.TempDir()
	probe = filepath.Join(dir, "ffprobe")
	script := fmt.Sprintf(`#!/bin/sh
for a; do file=$a; done
case "$file" in
*/hang_*)
	: > %[1]s/hanging
	while [ ! -e %[1]s/release ]; do sleep 0.05; done
	echo "$file: Invalid data found when processing input" >&2
	exit 1 ;;
*/dies_*)
	kill -9 $$ ;;
esac
exec ffprobe "$@"
`, dir)
	if err := os.WriteFile(probe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return probe, dir
}

// addSalvaged writes data as a salvaged segment (one cctvd did not see
// close: it must decode before it goes up) and adds it to the catalog.
func (e *env) addSalvaged(camera string, start time.Time, data []byte) catalog.Record {
	e.t.Helper()
	rel, p := e.segmentPath(camera, start)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	r, err := e.cat.Add(context.Background(), segment.Segment{Camera: camera, FeedID: "xx", Start: start, End: start.Add(10 * time.Second),
		Path: p, Size: int64(len(data)), Salvaged: true}, Key("rec/2025", rel))
	if err != nil {
		e.t.Fatal(err)
	}
	if !r.MustDecode {
		e.t.Fatalf("%s: a salvaged row not marked to decode", r.Name())
	}
	return r
}

// TestDecodeCheckNeverStarvesUploads: more rows waiting for their decode
// check than upload slots, whose checker hangs or dies, must not keep a
// segment closed since from going up (the starvation the review found:
// the decode ran inside the upload slot, a hung ffprobe held it for its
// whole budget and a failed one was retried at the head of the queue).
// The decode lane then gives each its verdict: a checker that keeps dying
// lets its file go up flagged "skipped", a file ffprobe rejects is
// quarantined, one it decodes goes up.
func TestDecodeCheckNeverStarvesUploads(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	probe, dir := decodeStandIn(t)
	video := realMP4(t, "2")
	hang1 := e.addSalvaged("hang", t0, mp4ish(64<<10))
	dies := e.addSalvaged("dies", t0.Add(10*time.Second), mp4ish(64<<10))
	hang2 := e.addSalvaged("hang", t0.Add(20*time.Second), mp4ish(64<<10))
	good := e.addSalvaged("good", t0.Add(30*time.Second), video)
	fresh := e.addSegment("cam1", t0.Add(time.Hour), 64<<10)
	release := func() {
		if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defer os.WriteFile(filepath.Join(dir, "release"), nil, 0o644) // whatever happens, let the stand-ins go

	var ev events
	run := e.runWithEvents(Config{Concurrency: 2, ProbePath: probe, DecodeRetry: 50 * time.Millisecond}, &ev)
	up := map[int64]bool{}
	for !up[fresh.ID] { // the fresh segment goes up while the checker hangs, for as long as the test holds it
		r := run.await(t, 1, time.Minute)[0]
		if r.ID != good.ID && r.ID != fresh.ID {
			t.Fatalf("%s went up before its decode check had a verdict", r.Name())
		}
		up[r.ID] = true
	}
	st := run.awaitStatus(t, time.Minute, func(s Status) bool { return strings.HasPrefix(s.Decoding, "hang_") })
	held, err := e.cat.ByPath(ctx, filepath.Join(filepath.Dir(hang1.Path), st.Decoding))
	if err != nil {
		t.Fatal(err)
	}
	if held.Upload != catalog.Pending || held.DecodeCheck != catalog.DecodeWaiting {
		t.Errorf("the row being decoded: %s, decode check %q", held.Upload, held.DecodeCheck)
	}
	if b, _ := e.cat.Backlog(ctx); b.Decoding < 1 || b.Count < 2 {
		t.Errorf("backlog while a decode hangs: %+v", b)
	}

	release() // the hung checkers now answer: the files are not video
	for !up[dies.ID] || !up[good.ID] {
		up[run.await(t, 1, 2*time.Minute)[0].ID] = true
	}
	run.awaitStatus(t, time.Minute, func(s Status) bool { return s.Quarantined == 2 })
	for _, q := range ev.quarantines() {
		if q.offsite || !strings.HasPrefix(q.rec.Name(), "hang_") {
			t.Errorf("quarantine reported of %s (offsite %v)", q.rec.Name(), q.offsite)
		}
	}

	for _, tt := range []struct {
		r           catalog.Record
		upload      catalog.UploadState
		local       catalog.LocalState
		check, meta string
	}{
		{fresh, catalog.Uploaded, catalog.Present, "", ""},
		{good, catalog.Uploaded, catalog.Present, catalog.DecodePassed, "passed"},
		{dies, catalog.Uploaded, catalog.Present, catalog.DecodeSkipped, "skipped"},
		{hang1, catalog.Pending, catalog.Quarantined, catalog.DecodeFailed, ""},
		{hang2, catalog.Pending, catalog.Quarantined, catalog.DecodeFailed, ""},
	} {
		row, _ := e.cat.Get(ctx, tt.r.ID)
		if row.Upload != tt.upload || row.Local != tt.local || row.DecodeCheck != tt.check {
			t.Errorf("%s: %s/%s, decode check %q; want %s/%s, %q", tt.r.Name(), row.Upload, row.Local, row.DecodeCheck, tt.upload, tt.local, tt.check)
		}
		if tt.upload != catalog.Uploaded {
			if !strings.Contains(row.LastError, "ffprobe decodes no video") {
				t.Errorf("%s: quarantined for %q", tt.r.Name(), row.LastError)
			}
			e.absent(tt.r.Key)
			continue
		}
		if _, meta := e.object(bucket, row.Key); meta[MetaDecodeCheck] != tt.meta {
			t.Errorf("%s: x-amz-meta-%s %q, want %q", tt.r.Name(), MetaDecodeCheck, meta[MetaDecodeCheck], tt.meta)
		}
	}
	if row, _ := e.cat.Get(ctx, dies.ID); row.DecodeTries != 3 {
		t.Errorf("the dying checker was tried %d times, want 3", row.DecodeTries)
	}
	if b, _ := e.cat.Backlog(ctx); b.Decoding != 0 || b.Count != 0 {
		t.Errorf("backlog at the end: %+v", b)
	}
	if st := run.u.Status(); st.DecodeSkipped != 1 || st.Failures != 0 || st.Decoding != "" {
		t.Errorf("status %+v", st)
	}
}
