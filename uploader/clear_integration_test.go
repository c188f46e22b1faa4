//go:build integration

package uploader

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/redact"
)

// The failure paths of clearAfterUpload, against the real MinIO: a local
// file goes only once S3 holds its bytes, verified, under the key the
// catalog names; whatever else happens, it stays.

// onDisk checks that every record's file is still there, byte for byte,
// and its row says present and not uploaded.
func (e *env) onDisk(when string, recs []catalog.Record, content map[int64][]byte) {
	e.t.Helper()
	for _, r := range recs {
		b, err := os.ReadFile(r.Path)
		if err != nil || !bytes.Equal(b, content[r.ID]) {
			e.t.Errorf("%s: %s is gone or changed (%v)", when, r.Name(), err)
		}
		row, _ := e.cat.Get(context.Background(), r.ID)
		if row.Local != catalog.Present || row.Upload == catalog.Uploaded || row.DeleteCause != "" {
			e.t.Errorf("%s: %s's row is %s/%s (%q)", when, r.Name(), row.Upload, row.Local, row.DeleteCause)
		}
	}
}

// cleared checks that a record's file was deleted by clearAfterUpload and
// that S3 holds its bytes under the row's key, verified.
func (e *env) cleared(r catalog.Record, content []byte) catalog.Record {
	e.t.Helper()
	row, _ := e.cat.Get(context.Background(), r.ID)
	if _, err := os.Stat(r.Path); !errors.Is(err, os.ErrNotExist) {
		e.t.Errorf("%s: the uploaded file was kept: %v", r.Name(), err)
	}
	if row.Upload != catalog.Uploaded || row.Local != catalog.Deleted || row.DeleteCause != catalog.CauseClearAfterUpload || row.Verified == "" {
		e.t.Errorf("%s: row %s/%s (%q), verified %q", r.Name(), row.Upload, row.Local, row.DeleteCause, row.Verified)
	}
	if got, meta := e.object(bucket, row.Key); !bytes.Equal(got, content) || meta[MetaSHA256] != shaHex(content) {
		e.t.Errorf("%s: S3's %s is not the file that was deleted (%d bytes)", r.Name(), row.Key, len(got))
	}
	return row
}

// TestClearAfterUploadWithS3Down: while MinIO is down, every file stays,
// however many attempts fail; when it is back, each is uploaded, verified,
// and only then deleted.
func TestClearAfterUploadWithS3Down(t *testing.T) {
	e := newEnv(t)
	e.minio.Stop()
	run := e.run(Config{ClearAfterUpload: true}, e.clientC)
	var recs []catalog.Record
	content := map[int64][]byte{}
	for i := range 3 {
		r := e.addSegment("cam1", t0.Add(time.Duration(i)*10*time.Second), 40<<10)
		content[r.ID], _ = os.ReadFile(r.Path)
		recs = append(recs, r)
		run.u.Notify()
	}
	st := run.awaitStatus(t, 30*time.Second, func(s Status) bool { return s.Failures >= 6 })
	if st.State != Failing || st.Uploaded != 0 {
		t.Errorf("status while S3 is down: %+v", st)
	}
	e.onDisk("while S3 is down", recs, content)

	e.minio.Start()
	run.await(t, len(recs), 60*time.Second)
	for _, r := range recs {
		e.cleared(r, content[r.ID])
	}
}

// TestClearAfterUploadBesideAPlantedObject: S3 holds different content
// under the segment's key. That object is kept; the segment goes up
// beside it under its conflict key, and the file is deleted only once
// that copy is verified.
func TestClearAfterUploadBesideAPlantedObject(t *testing.T) {
	e := newEnv(t)
	r := e.addSegment("cam1", t0, 64<<10)
	local, _ := os.ReadFile(r.Path)
	planted := mp4ish(5000)
	e.plant(r.Key, planted, map[string]string{"sha256": shaHex(planted)})
	var ev events
	run := e.runWithEvents(Config{ClearAfterUpload: true}, &ev)
	run.await(t, 1, time.Minute)
	row := e.cleared(r, local)
	if row.Key != ConflictKey(r.Key, shaHex(local)) || row.ConflictKey != r.Key {
		t.Errorf("row key %s, conflict %s; want the conflict key beside %s", row.Key, row.ConflictKey, r.Key)
	}
	if got, _ := e.object(bucket, r.Key); !bytes.Equal(got, planted) {
		t.Errorf("the planted object was replaced (%d bytes now)", len(got))
	}
	if st := run.u.Status(); st.Conflicts != 1 || ev.conflictCount() != 1 {
		t.Errorf("conflicts: status %d, reported %d", st.Conflicts, ev.conflictCount())
	}
}

// TestClearAfterUploadWhenBothKeysAreTaken: S3 holds different content
// under the key and under the first conflict key too (another writer, an
// object planted). Neither is written over: the segment goes up under its
// next conflict key, and only once that copy is verified is the file
// deleted.
func TestClearAfterUploadWhenBothKeysAreTaken(t *testing.T) {
	e := newEnv(t)
	r := e.addSegment("cam1", t0, 64<<10)
	local, _ := os.ReadFile(r.Path)
	keys := ConflictKeys(r.Key, shaHex(local))
	planted, planted2 := mp4ish(5000), mp4ish(6000)
	e.plant(r.Key, planted, map[string]string{"sha256": shaHex(planted)})
	e.plant(keys[0], planted2, map[string]string{"sha256": shaHex(planted2)})
	var ev events
	run := e.runWithEvents(Config{ClearAfterUpload: true}, &ev)
	run.await(t, 1, time.Minute)
	row := e.cleared(r, local)
	if row.Key != keys[1] || row.ConflictKey != r.Key {
		t.Errorf("went up as %s (conflict key %q), want %s beside %s", row.Key, row.ConflictKey, keys[1], r.Key)
	}
	for key, want := range map[string][]byte{r.Key: planted, keys[0]: planted2} {
		if got, _ := e.object(bucket, key); !bytes.Equal(got, want) {
			t.Errorf("%s was replaced", key)
		}
	}
	if st := run.u.Status(); st.Conflicts != 1 || ev.conflictCount() != 1 || st.Failures != 0 {
		t.Errorf("status %+v, conflicts reported %d", st, ev.conflictCount())
	}
}

// racingWriter is the real S3 client, except that right after cctvd's
// first PutObject of key succeeds, another writer replaces the object
// with different bytes (a stand-in for a second box writing to the same
// prefix, which cannot be arranged in time otherwise). So the HEAD that
// confirms the upload sees something else: the verification fails.
type racingWriter struct {
	countingClient
	key      string
	other    []byte
	plant    func(key string, data []byte)
	happened atomic.Bool
}

func (c *racingWriter) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	out, err := c.countingClient.PutObject(ctx, in, o...)
	if err == nil && *in.Key == c.key && !c.happened.Swap(true) {
		c.plant(c.key, c.other)
	}
	return out, err
}

// TestClearAfterUploadWhenVerificationFails: S3 accepted the upload, but
// what it holds afterwards is not the file: the verification fails, the
// file stays, the failure is counted as one; the next attempt finds the
// other content and goes up beside it, and only then is the file deleted.
func TestClearAfterUploadWhenVerificationFails(t *testing.T) {
	e := newEnv(t)
	r := e.addSegment("cam1", t0, 64<<10)
	local, _ := os.ReadFile(r.Path)
	other := mp4ish(7000)
	client, err := NewClient(context.Background(), e.clientC)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{ClearAfterUpload: true, Bucket: bucket, Prefix: "rec/2025", SavePath: e.save,
		RetryInitial: 2 * time.Second, RetryMax: 2 * time.Second}
	racer := &racingWriter{countingClient: countingClient{Client: client, puts: &e.puts}, key: r.Key, other: other,
		plant: func(key string, data []byte) { e.plant(key, data, map[string]string{"sha256": shaHex(data)}) }}
	run := &running{done: make(chan struct{}), ok: make(chan catalog.Record, 100)}
	run.u = New(cfg, Deps{Log: zerolog.New(e.logs), Catalog: e.cat, S3: racer, Redactor: redact.New(e.secret),
		OnUploaded: func(rec catalog.Record, _ time.Duration) { run.ok <- rec }})
	run.start(t)
	st := run.awaitStatus(t, 30*time.Second, func(s Status) bool { return s.VerifyFailures >= 1 })
	if !strings.Contains(st.LastError, ErrVerify.Error()) {
		t.Errorf("status after the race: %+v", st)
	}
	// Between the failure and the retry (2 s later), nothing was deleted.
	e.onDisk("after the verification failed", []catalog.Record{r}, map[int64][]byte{r.ID: local})

	run.await(t, 1, time.Minute)
	row := e.cleared(r, local)
	if row.Key != ConflictKey(r.Key, shaHex(local)) {
		t.Errorf("uploaded as %s, want beside the other writer's object", row.Key)
	}
	if got, _ := e.object(bucket, r.Key); !bytes.Equal(got, other) {
		t.Error("the other writer's object was replaced")
	}
	if st := run.u.Status(); st.VerifyFailures != 1 {
		t.Errorf("%d verification failures, want 1", st.VerifyFailures)
	}
}
