//go:build integration

package rebuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

var now = time.Date(2026, 1, 20, 12, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	minio *testenv.MinIO
	s3    *s3.Client // cctvd's own client, one attempt per request
	save  string
	cat   *catalog.Catalog
	logs  *testenv.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := testenv.StartMinIO(t)
	m.CreateBucket("bkt")
	client, err := uploader.NewClient(context.Background(), uploader.ClientConfig{Endpoint: m.Endpoint, PathStyle: true,
		AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, Region: "us-east-1", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	save := t.TempDir()
	cat, err := catalog.Open(context.Background(), filepath.Join(t.TempDir(), layout.CatalogName), save, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return &env{t: t, minio: m, s3: client, save: save, cat: cat, logs: &testenv.Buffer{}}
}

// put uploads body under rec/<rel> with the metadata cctvd's uploader
// writes (without it when meta is false).
func (e *env) put(rel string, body []byte, meta bool) string {
	e.t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("rec/" + rel), Body: bytes.NewReader(body)}
	sum := sha256.Sum256(body)
	if meta {
		info, _ := segment.Parse(filepath.Base(rel))
		in.Metadata = map[string]string{uploader.MetaCamera: info.Camera, uploader.MetaFeedID: "feed-from-meta",
			uploader.MetaStart:  info.Start.Add(250 * time.Millisecond).Format(uploader.MetaTimeLayout),
			uploader.MetaEnd:    info.End.Add(-250 * time.Millisecond).Format(uploader.MetaTimeLayout),
			uploader.MetaSHA256: hex.EncodeToString(sum[:])}
	}
	if _, err := e.minio.Client().PutObject(context.Background(), in); err != nil {
		e.t.Fatal(err)
	}
	return hex.EncodeToString(sum[:])
}

func (e *env) rebuilder(pageSize int32) *Rebuilder {
	return New(Config{Bucket: "bkt", Prefix: "rec", KeepDays: 30, PageSize: pageSize, RetryInitial: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond},
		Deps{Log: zerolog.New(e.logs), S3: e.s3, Catalog: e.cat, Now: func() time.Time { return now }})
}

func relOf(camera string, start time.Time) string {
	return layout.DayRel(camera, start) + "/" + segment.Name(camera, "f1", start, start.Add(10*time.Second), 0)
}

// TestRebuildFromS3 lists the bucket page by page (two keys a page) and
// checks every kind of key ends as it should.
func TestRebuildFromS3(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	body := []byte("footage")
	t1 := now.Add(-48 * time.Hour)

	gone := relOf("door", t1)                      // local file deleted, no row: gets one
	goneSHA := e.put(gone, body, true)             //
	local := relOf("door", t1.Add(10*time.Second)) // on disk, pending: left to the uploader
	e.put(local, body, true)
	lost := relOf("door", t1.Add(20*time.Second)) // row not uploaded, file gone, same bytes in S3: confirmed
	e.put(lost, body, true)
	noMeta := relOf("gate", t1) // uploaded without metadata: a row all the same
	e.put(noMeta, body, false)
	e.put(relOf("door", now.Add(-40*24*time.Hour)), body, true)  // older than the catalog keeps
	e.put(relOf("door", t1.Add(30*time.Second)), nil, true)      // empty: no footage
	e.put("readme.txt", []byte("x"), false)                      // not a segment
	e.put("gate/2026-01-18/"+filepath.Base(gone), body, true)    // another camera's folder
	e.put("door/2025-01-01/"+filepath.Base(local), body, true)   // the wrong day
	e.put("door/2026-01-18/x/"+filepath.Base(local), body, true) // too deep

	for _, rel := range []string{local, lost} {
		p := filepath.Join(e.save, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, body, 0o644)
		info, _ := segment.Parse(filepath.Base(rel))
		if _, err := e.cat.Add(ctx, segment.Segment{Camera: info.Camera, FeedID: info.FeedID, Start: info.Start, End: info.End, Path: p, Size: int64(len(body))}, "rec/"+rel); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := e.cat.ByPath(ctx, filepath.Join(e.save, lost))
	e.cat.MarkLocalDeleted(ctx, r.ID, catalog.CauseVanished)

	if err := Request(ctx, e.cat); err != nil {
		t.Fatal(err)
	}
	rb := e.rebuilder(2)
	if err := rb.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st := rb.Status()
	if st.State != Finished || st.Listed != 10 || st.Added != 2 || st.Confirmed != 1 {
		t.Errorf("status %+v", st)
	}
	if _, due, _ := e.cat.State(ctx, StateKey); due {
		t.Error("the rebuild is still marked due")
	}

	row := func(rel string) catalog.Record {
		t.Helper()
		r, err := e.cat.ByPath(ctx, filepath.Join(e.save, rel))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return r
	}
	g := row(gone)
	info, _ := segment.Parse(filepath.Base(gone))
	if g.Upload != catalog.Uploaded || g.Local != catalog.Deleted || g.SHA256 != goneSHA || g.Bytes != int64(len(body)) ||
		g.Key != "rec/"+gone || g.FeedID != "feed-from-meta" || !g.Start.Equal(info.Start.Add(250*time.Millisecond)) ||
		!g.End.Equal(info.End.Add(-250*time.Millisecond)) || g.UploadedAt.IsZero() || g.ETag == "" || g.Bucket != "bkt" {
		t.Errorf("row of an object whose file is gone: %+v", g)
	}
	if l := row(local); l.Upload != catalog.Pending || l.Local != catalog.Present {
		t.Errorf("row of a file on disk: %+v", l)
	}
	if l := row(lost); l.Upload != catalog.Uploaded || l.Local != catalog.Deleted || l.SHA256 != goneSHA || l.Bucket != "bkt" {
		t.Errorf("row confirmed by S3: %+v", l)
	}
	if n := row(noMeta); n.Upload != catalog.Uploaded || n.SHA256 != "" || n.FeedID != "f1" || n.Bucket != "bkt" {
		t.Errorf("row of an object without metadata: %+v", n)
	}
	// Where it found them is remembered, for exports of what is pruned later.
	if locs, err := e.cat.Locations(ctx); err != nil || len(locs) != 1 || locs[0].Bucket != "bkt" || locs[0].Prefix != "rec" {
		t.Errorf("locations after the rebuild: %+v, %v", locs, err)
	}
	var count int
	list, _, _ := e.cat.List(ctx, catalog.Filter{Limit: 100})
	count = len(list)
	if count != 4 {
		t.Errorf("%d rows, want 4: %+v", count, list)
	}

	// A second run has nothing to do: the rebuild is no longer due.
	rb2 := e.rebuilder(2)
	if err := rb2.Run(ctx); err != nil || rb2.Status().Listed != 0 {
		t.Errorf("second run: %+v %v", rb2.Status(), err)
	}
}

// TestRebuildResumes: the position saved with each page is where a
// restarted rebuild continues.
func TestRebuildResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t1 := now.Add(-24 * time.Hour)
	var rels []string
	for i := range 5 {
		rel := relOf("door", t1.Add(time.Duration(i)*10*time.Second))
		e.put(rel, []byte("x"), true)
		rels = append(rels, rel)
	}
	// As if a rebuild had done the first two keys before a restart.
	if err := e.cat.SetState(ctx, StateKey, "rec/"+rels[1]); err != nil {
		t.Fatal(err)
	}
	rb := e.rebuilder(2)
	rb.Run(ctx)
	if st := rb.Status(); st.Listed != 3 || st.Added != 3 {
		t.Errorf("status %+v, want the last 3 keys only", st)
	}
	for i, rel := range rels {
		_, err := e.cat.ByPath(ctx, filepath.Join(e.save, rel))
		if has := err == nil; has != (i >= 2) {
			t.Errorf("%s: row %v", rel, has)
		}
	}
}

// TestRebuildWaitsForS3: with S3 down the rebuild waits, says so once, and
// finishes when S3 is back.
func TestRebuildWaitsForS3(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rel := relOf("door", now.Add(-time.Hour))
	e.put(rel, []byte("x"), true)
	Request(ctx, e.cat)
	e.minio.Stop()
	rb := e.rebuilder(100)
	done := make(chan struct{})
	go func() { rb.Run(ctx); close(done) }()
	if err := rb.WaitFor(ctx, func(s Status) bool { return s.State == Waiting }); err != nil {
		t.Fatalf("not waiting with S3 down: %+v", rb.Status())
	}
	// Let it retry a few times before S3 comes back.
	deadline := time.After(10 * time.Second)
	for strings.Count(e.logs.String(), "retrying") < 1 {
		select {
		case <-deadline:
			t.Fatal("the wait was not logged")
		case <-time.After(20 * time.Millisecond):
		}
	}
	e.minio.Start()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("rebuild did not finish after S3 came back: %+v", rb.Status())
	}
	if st := rb.Status(); st.State != Finished || st.Added != 1 {
		t.Errorf("status %+v", st)
	}
	if n := strings.Count(e.logs.String(), "rebuild from S3 paused"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, e.logs.String())
	}
}
