//go:build integration

package uploader

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/catalog"
)

// TestReturnedFileUnderAConflictKeyGoesUp: a segment went up beside
// different content under its conflict key and was cleared; then a file
// with other footage is back under its name (a name repeated after a
// clock step, once the old file was gone). Reconcile puts the row back in
// the queue; the new file must go up beside both objects, which stay as
// they are, instead of failing for ever on "different content under the
// conflict key too".
func TestReturnedFileUnderAConflictKeyGoesUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.addSegment("cam1", t0, 64<<10)
	first, _ := os.ReadFile(r.Path)
	planted := mp4ish(5000)
	e.plant(r.Key, planted, map[string]string{MetaSHA256: shaHex(planted)})
	run := e.run(Config{ClearAfterUpload: true}, e.clientC)
	run.await(t, 1, time.Minute)
	row := e.cleared(r, first)
	if row.ConflictKey != r.Key {
		t.Fatalf("first upload: key %s, conflict key %q; want it beside %s", row.Key, row.ConflictKey, r.Key)
	}
	run.stop()

	second := realMP4(t, "3") // other footage under the same name (decoded before it goes up: cctvd did not see it close)
	if err := os.WriteFile(r.Path, second, 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := e.cat.Reconcile(ctx, func(rel string) string { return Key("rec/2025", rel) }); err != nil || res.Returned != 1 {
		t.Fatalf("reconcile = %+v, %v", res, err)
	}
	run = e.run(Config{ClearAfterUpload: true}, e.clientC)
	run.await(t, 1, time.Minute)
	back := e.cleared(r, second)
	if back.Key != ConflictKey(r.Key, shaHex(second)) || back.ConflictKey != r.Key {
		t.Errorf("the returned file went up as %s (conflict key %q), want %s beside %s",
			back.Key, back.ConflictKey, ConflictKey(r.Key, shaHex(second)), r.Key)
	}
	for key, want := range map[string][]byte{r.Key: planted, row.Key: first} {
		if got, _ := e.object(bucket, key); !bytes.Equal(got, want) {
			t.Errorf("%s was replaced (%d bytes now)", key, len(got))
		}
	}
	if st := run.u.Status(); st.Failures != 0 {
		t.Errorf("status %+v", st)
	}
}

// TestEveryConflictKeyTakenIsNeverOverwritten: S3 holds different content
// under the key and under each of the segment's conflict keys: it cannot go
// up without replacing something, so it does not, and stays on disk; the
// failure is in the status and the row.
func TestEveryConflictKeyTakenIsNeverOverwritten(t *testing.T) {
	e := newEnv(t)
	r := e.addSegment("cam1", t0, 64<<10)
	local, _ := os.ReadFile(r.Path)
	planted := map[string][]byte{}
	for _, key := range append([]string{r.Key}, ConflictKeys(r.Key, shaHex(local))...) {
		planted[key] = mp4ish(5000)
		e.plant(key, planted[key], map[string]string{MetaSHA256: shaHex(planted[key])})
	}
	if len(planted) != 1+conflictNames {
		t.Fatalf("%d keys planted", len(planted))
	}
	run := e.run(Config{ClearAfterUpload: true}, e.clientC)
	run.awaitStatus(t, time.Minute, func(s Status) bool { return s.Failures >= 2 })
	e.onDisk("with every key taken", []catalog.Record{r}, map[int64][]byte{r.ID: local})
	for key, want := range planted {
		if got, _ := e.object(bucket, key); !bytes.Equal(got, want) {
			t.Errorf("%s was replaced", key)
		}
	}
	if row, _ := e.cat.Get(context.Background(), r.ID); !strings.Contains(row.LastError, "every conflict key") {
		t.Errorf("row's last error %q", row.LastError)
	}
}
