//go:build integration

package uploader

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
)

// quarantineWatched looks, at each HEAD the uploader asks of S3 (the
// question a quarantine asks: does S3 keep an earlier upload?), whether
// the file is in the quarantine, and if it is, whether its row says so.
type quarantineWatched struct {
	S3API
	dst   string
	mu    sync.Mutex
	heads int
	look  func()
}

func (h *quarantineWatched) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	h.mu.Lock()
	h.heads++
	h.mu.Unlock()
	if _, err := os.Stat(h.dst); err == nil {
		h.look()
	}
	return h.S3API.HeadObject(ctx, in, o...)
}

// TestQuarantinedFileHasItsRowBeforeItIsThere: a file is in the
// quarantine only once its row says so, at that path: retention (which
// deletes over-bound quarantined files, recording each deletion in its
// row first) must never find a quarantined file whose row it cannot
// match. The uploader used to move the file, ask S3 (up to 10 s), and
// only then record the move; a decision in that window deleted the file
// unrecorded. Now it asks S3 first, records, then moves.
func TestQuarantinedFileHasItsRowBeforeItIsThere(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A row rebuilt from the disk (it may have gone up before: the
	// quarantine asks S3), whose file a power cut emptied.
	rel, p := e.segmentPath("cam1", t0)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, nil, 0o644)
	if res, err := e.cat.Reconcile(ctx, func(rel string) string { return Key("rec/2025", rel) }); err != nil || res.Added != 1 {
		t.Fatalf("reconcile: %+v %v", res, err)
	}
	r, err := e.cat.ByPath(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(layout.QuarantineDir(e.save, "cam1"), filepath.Base(rel))
	run := e.runStopped(Config{}, e.clientC)
	watched := &quarantineWatched{S3API: run.u.s3, dst: dst, look: func() {
		if row, err := e.cat.ByPath(ctx, dst); err != nil || row.ID != r.ID || row.Local != catalog.Quarantined {
			t.Errorf("the file is in the quarantine while S3 is asked, and its row is not there (%s, %v)", row.Local, err)
		}
	}}
	run.u.s3, run.u.deps.S3 = watched, watched
	run.start(t)
	run.awaitStatus(t, time.Minute, func(s Status) bool { return s.Quarantined == 1 })
	run.stop()
	if watched.heads == 0 {
		t.Error("S3 was not asked whether it keeps an earlier upload")
	}
	if row, _ := e.cat.Get(ctx, r.ID); row.Path != dst || row.Local != catalog.Quarantined || row.LastError != "the file is empty" {
		t.Errorf("after: row %s %s %q", row.Path, row.Local, row.LastError)
	}
	if _, err := os.Stat(dst); err != nil {
		t.Errorf("the file is not in the quarantine: %v", err)
	}
}

// TestQuarantineMoveFailsRowStays: the quarantine is recorded before the
// move; when the move fails (here the camera's quarantine folder is
// another filesystem, so rename answers EXDEV), the row goes back to where
// the file still is, present, and is tried again; nothing is lost or
// left pointing into the quarantine.
func TestQuarantineMoveFailsRowStays(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	qdir := layout.QuarantineDir(e.save, "cam1")
	os.MkdirAll(qdir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", qdir).CombinedOutput(); err != nil {
		testenv.NeedsRoot(t, "cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { syscall.Unmount(qdir, syscall.MNT_DETACH) })
	r := e.addFile("cam1", t0, nil) // empty: quarantined
	run := e.run(Config{}, e.clientC)
	run.awaitStatus(t, time.Minute, func(s Status) bool { return s.Failures >= 1 })
	run.stop()
	if !strings.Contains(e.logs.String(), "cannot move a damaged file into the quarantine; it stays in place") {
		t.Errorf("the failed move is not logged:\n%s", e.logs.String())
	}
	row, _ := e.cat.Get(ctx, r.ID)
	if row.Local != catalog.Present || row.Path != r.Path {
		t.Errorf("after the failed move: row %s at %s, want present at %s", row.Local, row.Path, r.Path)
	}
	if _, err := os.Stat(r.Path); err != nil {
		t.Errorf("the file: %v", err)
	}
	if st := run.u.Status(); st.Quarantined != 0 {
		t.Errorf("%d quarantined reported, want none", st.Quarantined)
	}
}
