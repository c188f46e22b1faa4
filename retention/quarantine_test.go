package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	ff "github.com/Eyevinn/mp4ff/mp4"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// quarantineFiles writes n damaged files of size bytes into the camera's
// quarantine, each moved in after the one before (ctime strictly later),
// with modification times the other way round (the first the newest: a
// file keeps its segment's mtime through the rename, which says nothing
// of when it moved in), and returns their paths.
func (e *env) quarantineFiles(camera string, n, size int) []string {
	e.t.Helper()
	dir := layout.QuarantineDir(e.save, camera)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("%s-q%02d.mp4", camera, i))
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			e.t.Fatal(err)
		}
		e.movedIn(p, t0.Add(-time.Duration(i)*time.Minute))
		out = append(out, p)
	}
	return out
}

// movedIn gives the file at p modification time mtime and a ctime later
// than that of every file moved in before (the kernel's ctime has a
// coarse clock: two files written in a row may share one).
func (e *env) movedIn(p string, mtime time.Time) {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := os.Chtimes(p, mtime, mtime); err != nil { // sets the ctime to now
			e.t.Fatal(err)
		}
		if c := ctime(e.t, p); c.After(e.lastCtime) {
			e.lastCtime = c
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the ctime does not move")
		}
	}
}

func ctime(t *testing.T, p string) time.Time {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
}

// headerOnly is an MP4 header without a frame: what ffmpeg leaves of a
// segment it opened and never wrote to. It holds no footage.
func headerOnly(t *testing.T) []byte {
	in := ff.CreateEmptyInit()
	in.AddEmptyTrack(90000, "video", "und")
	var b bytes.Buffer
	if err := in.Encode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// running starts r.Run, as the daemon does, and returns a function that
// waits for the status to satisfy cond (at least one decision more than
// when it was called) and returns it; Run is stopped when the test ends.
func running(t *testing.T, r *Retention) func(cond func(Status) bool) Status {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of its context's end")
		}
	})
	return func(cond func(Status) bool) Status {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if err := r.WaitFor(wctx, cond); err != nil {
			t.Fatalf("retention's status never got there within 20 s: %+v", r.Status())
		}
		return r.Status()
	}
}

func exists(paths []string) []int {
	var idx []int
	for i, p := range paths {
		if _, err := os.Stat(p); err == nil {
			idx = append(idx, i)
		}
	}
	return idx
}

// TestQuarantineKeptWithoutPressure: quarantined files are copies S3
// lacks (a power cut's tail, ffprobe's verdict, no video); over its bound
// the quarantine is still not touched while savePath is under its limit
// and the filesystem above its floor. It used to be trimmed at every
// decision, ahead of the uploaded recordings.
func TestQuarantineKeptWithoutPressure(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "", 2, 1000, 1)
	q := e.quarantineFiles("cam1", 3, 1000) // 3000: fifteen times the default bound (2% of 10000)
	r, deleted := e.retention(Config{LimitBytes: 10000}, plenty)
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	if got := exists(q); len(got) != 3 {
		t.Errorf("quarantined files left %v of 3: deleted with savePath at 5000 of a 10000 limit", got)
	}
	if got := e.present(); len(got) != 2 || len(*deleted) != 0 {
		t.Errorf("recordings left %v, deleted %v", got, *deleted)
	}
	if st := r.Status(); st.Quarantine.DeletedFiles != 0 || st.Quarantine.Bytes != 3000 || st.Quarantine.LimitBytes != 200 {
		t.Errorf("quarantine status %+v", st.Quarantine)
	}
}

// TestQuarantineGoesBetweenUploadedAndNot: a decision that must free
// space takes the uploaded recordings first (S3 has them), then the
// quarantine over its bound (damaged copies), then the recordings S3
// lacks; within the quarantine, the files that cost no footage first (an
// MP4 header without a frame, an empty file, one S3 has an earlier upload
// of), then the others in the order they moved in (ctime, not the
// segment's mtime), down to the low-water mark of the bound. Each
// deletion is recorded in its row and reported through OnDelete (the
// metric, the alert), with a cause that says whether footage went.
func TestQuarantineGoesBetweenUploadedAndNot(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "", 10, 1000, 2) // 10000: the first two uploaded
	q := e.quarantineFiles("cam1", 4, 1500)
	// A segment the uploader found damaged, S3 holding an earlier upload
	// of it: its row says uploaded. Moved in last.
	bad := e.add(t0.Add(-2*time.Hour), 1500, true)
	e.recs = e.recs[:10]
	inS3 := filepath.Join(layout.QuarantineDir(e.save, "cam1"), bad.Name())
	if err := e.cat.MarkQuarantined(ctx, bad.ID, inS3, "the file is empty"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bad.Path, inS3); err != nil {
		t.Fatal(err)
	}
	e.movedIn(inS3, t0)
	// A header without a frame and an empty file, moved in last too.
	noFrame := filepath.Join(layout.QuarantineDir(e.save, "cam1"), "R1-00003.mp4")
	os.WriteFile(noFrame, headerOnly(t), 0o644)
	e.movedIn(noFrame, t0)
	empty := filepath.Join(layout.QuarantineDir(e.save, "cam1"), "R1-00004.mp4")
	os.WriteFile(empty, nil, 0o644)
	e.movedIn(empty, t0)
	hdr := int64(len(headerOnly(t)))

	// Limit 9000 (down to 8550), bound 2700 (low water 2565): 10000 of
	// recordings and 7500 + a header quarantined.
	r, deleted := e.retention(Config{LimitBytes: 9000, QuarantineShare: 0.3}, plenty)
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	name := func(p string) string { return filepath.Base(p) }
	want := []string{
		e.recs[0].Name() + " " + catalog.CauseSizeLimit, e.recs[1].Name() + " " + catalog.CauseSizeLimit,
		bad.Name() + " " + CauseQuarantineLimit, // S3 has it
		name(noFrame) + " " + CauseQuarantineNoFootage, name(empty) + " " + CauseQuarantineNoFootage,
		name(q[0]) + " " + CauseQuarantineLimit, name(q[1]) + " " + CauseQuarantineLimit, name(q[2]) + " " + CauseQuarantineLimit,
		// 17500+hdr down to 8550: 2000 uploaded, the quarantine down to
		// 1500 (q[3], the last of them to move in, is left), then 950 more.
		e.recs[2].Name() + " " + catalog.CauseSizeLimit,
	}
	if !slices.Equal(*deleted, want) {
		t.Errorf("deleted, in order:\n%s\nwant:\n%s", strings.Join(*deleted, "\n"), strings.Join(want, "\n"))
	}
	if got := exists(q); !slices.Equal(got, []int{3}) {
		t.Errorf("quarantined files left %v, want [3]: by when they moved in, not by mtime", got)
	}
	if got, _ := e.cat.Get(ctx, bad.ID); got.Local != catalog.Deleted || got.DeleteCause != CauseQuarantineLimit || got.Upload != catalog.Uploaded {
		t.Errorf("the quarantined row: %s (%s), %s; want deleted (%s), uploaded", got.Local, got.DeleteCause, got.Upload, CauseQuarantineLimit)
	}
	st := r.Status()
	wantQ := QuarantineStatus{Bytes: 1500, Files: 1, LimitBytes: 2700, DeletedFiles: 6, DeletedBytes: 6000 + hdr}
	if st.Quarantine != wantQ || st.Shortfall != "" || st.DeletedUploaded != 3 || st.DeletedNotUploaded != 6 {
		t.Errorf("status %+v, want quarantine %+v, no shortfall, 3 deletions of what S3 has", st, wantQ)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "deleted a quarantined file S3 does not have"); n != 3 {
		t.Errorf("%d warnings of quarantined footage S3 lacked deleted, want 3:\n%s", n, logs)
	}
}

// TestQuarantineWithoutBound: quarantinePercent 0 keeps every
// quarantined file; a decision that must free space deletes recordings
// S3 lacks instead, and says so when the quarantine is why it falls short.
func TestQuarantineWithoutBound(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "", 2, 1000, 0)
	q := e.quarantineFiles("cam1", 2, 4500)
	r, _ := e.retention(Config{LimitBytes: 9000, QuarantineUnbounded: true}, plenty) // 11000 held, down to 8550
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	if got := exists(q); len(got) != 2 {
		t.Errorf("quarantined files left %v of 2 without a bound", got)
	}
	if got := e.present(); len(got) != 0 {
		t.Errorf("recordings left %v, want none", got)
	}
	st := r.Status()
	if !st.Quarantine.Unbounded || st.Quarantine.LimitBytes != 0 || st.Quarantine.DeletedFiles != 0 {
		t.Errorf("quarantine status %+v", st.Quarantine)
	}
	if !strings.Contains(st.Shortfall, "the quarantine holds 9.0 kB of damaged files (it has no bound: storageConfig.quarantinePercent is 0)") {
		t.Errorf("shortfall %q does not name the quarantine", st.Shortfall)
	}
}

// TestShortfallNamesTheQuarantine: when what is left that retention may
// not delete keeps savePath over its target, the status says so, the
// quarantine first; the next decision that reaches its target clears it.
func TestShortfallNamesTheQuarantine(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "", 1, 500, 1)
	e.quarantineFiles("cam1", 1, 4900)
	dir := layout.StagingDir(e.save, "cam1")
	os.MkdirAll(dir, 0o755)
	open := filepath.Join(dir, staging.SegmentName("R", 0))
	os.WriteFile(open, make([]byte, 5000), 0o644)
	r, _ := e.retention(Config{LimitBytes: 10000, QuarantineShare: 0.5}, plenty)
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	for _, want := range []string{"savePath holds 9.9 kB, 400 bytes over the cleanup target, and nothing more can be deleted",
		"the quarantine holds 4.9 kB of damaged files (its bound is 5.0 kB)", "5.0 kB are segments being written"} {
		if !strings.Contains(st.Shortfall, want) {
			t.Errorf("shortfall %q lacks %q", st.Shortfall, want)
		}
	}
	if st.Quarantine.Bytes != 4900 || st.Quarantine.Files != 1 || st.Quarantine.LimitBytes != 5000 {
		t.Errorf("quarantine status %+v", st.Quarantine)
	}
	os.WriteFile(open, make([]byte, 4000), 0o644) // the open segment is closed, a new one begins
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Shortfall != "" {
		t.Errorf("under the limit, the shortfall stays: %q", st.Shortfall)
	}
}

// TestShortfallOnTheFloor: below the free-space floor with nothing left
// to delete, the status says what holds the filesystem.
func TestShortfallOnTheFloor(t *testing.T) {
	e := newEnv(t, "", 1, 1000, 1)
	e.quarantineFiles("cam1", 1, 2000)
	other := filepath.Join(e.save, "other")
	os.WriteFile(other, make([]byte, 15000), 0o644)
	// 20000-byte disk: 1000 + 2000 + 15000 held, 2000 free; floor 4000.
	r, _ := e.retention(Config{LimitBytes: 1 << 30, MinFreeBytes: 4000, QuarantineShare: 0.5}, fakeDisk(e.save, 20000))
	if err := r.Decide(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	for _, want := range []string{"the filesystem has 3.0 kB free, 1.2 kB short of its floor and nothing more can be deleted",
		"the quarantine holds 2.0 kB", "15.0 kB of the filesystem are files cctvd does not own"} {
		if !strings.Contains(st.Shortfall, want) {
			t.Errorf("shortfall %q lacks %q", st.Shortfall, want)
		}
	}
}

// TestQuarantineTrackedAsFilesMoveIn: a file the uploader or segmenter
// moves into the quarantine counts at the next decision, which its report
// asks for, not only at the hourly cross-check; over the bound it stays
// while nothing forces a deletion, and once something does, the first to
// have moved in goes, before any recording S3 lacks.
func TestQuarantineTrackedAsFilesMoveIn(t *testing.T) {
	e := newEnv(t, "", 2, 1000, 0)
	r, _ := e.retention(Config{LimitBytes: 10000, QuarantineShare: 0.5, Interval: time.Hour, MinGap: time.Millisecond}, plenty)
	wait := running(t, r)
	wait(func(st Status) bool { return st.Decisions >= 1 })

	dir := layout.QuarantineDir(e.save, "cam1")
	os.MkdirAll(dir, 0o755)
	first := filepath.Join(dir, "first.mp4")
	os.WriteFile(first, make([]byte, 2000), 0o644)
	e.movedIn(first, t0)
	d0 := r.Status().Decisions
	r.QuarantineChanged("cam1")
	st := wait(func(st Status) bool { return st.Decisions > d0 }) // the decision it asked for, finished
	if st.Quarantine.Files != 1 || st.Quarantine.Bytes != 2000 || st.UsedBytes != 4000 {
		t.Errorf("after a file moved in: %+v, want 2000 quarantined, 4000 used", st)
	}

	second := filepath.Join(layout.QuarantineDir(e.save, "cam2"), "second.mp4")
	os.MkdirAll(filepath.Dir(second), 0o755)
	os.WriteFile(second, make([]byte, 4000), 0o644) // 6000 over a bound of 5000
	e.movedIn(second, t0.Add(-time.Hour))           // an older segment, moved in later
	d0 = r.Status().Decisions
	r.QuarantineChanged("cam2")
	st = wait(func(st Status) bool { return st.Decisions > d0 })
	if got := exists([]string{first, second}); len(got) != 2 || st.Quarantine.DeletedFiles != 0 || st.Quarantine.Bytes != 6000 {
		t.Errorf("over its bound with 8000 of a 10000 limit held: files left %v, status %+v; want both kept", got, st.Quarantine)
	}

	// A smaller limit: 8000 held of 8000, down to 7600; the bound is 4000.
	d0 = r.Status().Decisions
	r.Reconfigure(Config{LimitBytes: 8000, QuarantineShare: 0.5, Interval: time.Hour, MinGap: time.Millisecond})
	st = wait(func(st Status) bool { return st.Decisions > d0 && st.Quarantine.DeletedFiles > 0 })
	if _, err := os.Stat(first); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the first file to move in is still there: %v", err)
	}
	if _, err := os.Stat(second); err != nil {
		t.Errorf("the last file to move in went: %v", err)
	}
	if got := e.present(); len(got) != 2 {
		t.Errorf("recordings left %v, want both: the quarantine over its bound goes first", got)
	}
	if st.Quarantine.Bytes != 4000 || st.Quarantine.Files != 1 || st.Quarantine.DeletedBytes != 2000 {
		t.Errorf("quarantine status %+v, want 4000 in 1 file, 2000 deleted", st.Quarantine)
	}
}
