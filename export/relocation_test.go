//go:build integration

package export

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// The second bucket, made once for the package's MinIO.
var (
	movedOnce      sync.Once
	movedErr       error
	relocationRuns atomic.Int64
)

// TestExportAfterABucketChange: the real uploader sends the first
// recordings to one bucket and prefix, clears them from the box, and a
// reload moves s3Bucket and s3Path; later recordings go to the new place.
// An export of the whole range reads each source from where it went, and
// once the catalog has pruned the oldest rows, the bucket listing still
// finds them under the old bucket and prefix.
func TestExportAfterABucketChange(t *testing.T) {
	fixtures(t)
	ctx := context.Background()
	const movedBucket = "exports-moved"
	movedOnce.Do(func() { movedErr = fx.minio.CreateBucket(movedBucket) })
	if movedErr != nil {
		t.Fatal(movedErr)
	}
	run := fmt.Sprint(relocationRuns.Add(1)) // -count=N: each run its own keys
	oldPrefix, newPrefix := "old/"+t.Name()+"/"+run, "new/"+t.Name()+"/"+run
	save := t.TempDir()
	cat, err := catalog.Open(ctx, layout.Catalog(layout.DefaultStateDir(save)), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	client, err := uploader.NewClient(ctx, uploader.ClientConfig{Region: "us-east-1", Endpoint: fx.minio.Endpoint, PathStyle: true,
		AccessKeyID: fx.minio.AccessKey, SecretAccessKey: fx.minio.SecretKey, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	uploaded := make(chan catalog.Record, len(fx.recs))
	cfgA := uploader.Config{Bucket: bucket, Prefix: oldPrefix, SavePath: save, ClearAfterUpload: true}
	up := uploader.New(cfgA, uploader.Deps{Log: zerolog.Nop(), Catalog: cat, S3: client, Redactor: redact.New(),
		OnUploaded: func(r catalog.Record, _ time.Duration) { uploaded <- r }})
	upCtx, stopUp := context.WithCancel(ctx)
	upDone := make(chan struct{})
	go func() { defer close(upDone); up.Run(upCtx) }()
	defer func() { stopUp(); <-upDone }()

	// record adds a recording as the segmenter does, under the prefix in
	// force, and waits for it to go up and be cleared.
	record := func(i int, prefix string) {
		t.Helper()
		r := fx.recs[i]
		name := segment.Name("door", "f1", r.start, r.end, 0)
		rel := layout.DayRel("door", r.start) + "/" + name
		path := filepath.Join(save, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, r.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := cat.Add(ctx, segment.Segment{Camera: "door", FeedID: "f1", Start: r.start, End: r.end, Path: path,
			Size: int64(len(r.data))}, uploader.Key(prefix, rel)); err != nil {
			t.Fatal(err)
		}
		up.Notify()
		select {
		case <-uploaded:
		case <-time.After(time.Minute):
			t.Fatalf("recording %d not uploaded: %+v", i, up.Status())
		}
	}
	n := len(fx.recs)
	for i := range n - 1 {
		record(i, oldPrefix)
	}
	// The reload: a new bucket and s3Path for what is recorded from now on.
	cfgB := cfgA
	cfgB.Bucket, cfgB.Prefix = movedBucket, newPrefix
	up.Reconfigure(cfgB, nil)
	record(n-1, newPrefix)

	var horizon time.Time
	svc := NewService(ServiceConfig{Bucket: movedBucket, Prefix: newPrefix, Version: "test"},
		ServiceDeps{Catalog: cat, S3: client, Log: zerolog.Nop(), PrunedBefore: func() time.Time { return horizon }, Locations: cat.Locations})
	defer svc.Close()
	from, to := fx.recs[0].start, fx.recs[n-1].end
	exportAll := func(when string) {
		t.Helper()
		tl, err := svc.Spans(ctx, "door", from, to)
		if err != nil {
			t.Fatalf("%s: spans: %v", when, err)
		}
		count := 0
		for _, sp := range tl.Spans {
			count += sp.Segments
		}
		if count != n {
			t.Errorf("%s: the timeline counts %d segments, want %d: %+v", when, count, n, tl)
		}
		c, err := svc.Clip(ctx, "door", from, to)
		if err != nil {
			t.Fatalf("%s: export: %v", when, err)
		}
		defer c.Close()
		m, err := c.Manifest(ctx)
		if err != nil {
			t.Fatalf("%s: manifest: %v", when, err)
		}
		if len(m.Sources) != n {
			t.Fatalf("%s: %d sources, want %d", when, len(m.Sources), n)
		}
		for i, src := range m.Sources {
			want := bucket // the manifest names the bucket of a source not in its own
			if i == n-1 {
				want = ""
			}
			if src.Read != ReadS3 || src.SHA256 != sha(fx.recs[i].data) || src.Bucket != want {
				t.Errorf("%s: source %d: read %s, sha256 %s, bucket %q (want %q)", when, i, src.Read, src.SHA256, src.Bucket, want)
			}
		}
		if m.Bucket != movedBucket {
			t.Errorf("%s: the manifest's bucket %q", when, m.Bucket)
		}
		// The manifest checks out against the buckets, each source in its own.
		checks, err := Verify(ctx, &m, client, "", t.TempDir(), true)
		if err != nil {
			t.Fatalf("%s: verify: %v", when, err)
		}
		for _, c := range checks[:n] {
			if c.Problem != "" {
				t.Errorf("%s: verify %s: %s", when, c.What, c.Problem)
			}
		}
	}
	exportAll("cleared from the box, before and after the bucket change")

	// The catalog forgets the oldest rows (catalogRetentionDays): the
	// bucket listing must find them where they went.
	horizon = fx.recs[2].start
	if res, err := cat.Prune(ctx, horizon); err != nil || res.Segments != 2 {
		t.Fatalf("prune = %+v, %v", res, err)
	}
	exportAll("the oldest rows pruned")
}

// TestExportFindsWhatTheRowMisplaces: rows uploaded before cctvd kept
// each row's bucket got, at the upgrade, the s3Bucket configured then; had
// it changed before, they name the wrong bucket (here the real uploader
// sends the recordings to one bucket, and the rows are then made to say
// the other, as the upgrade's fill would). An export of that cleared
// footage used to fail with NoSuchKey; it now looks under the same
// camera/day/file in every location the catalog remembers, reads each
// source where it is, and the manifest says where. A source that is
// nowhere fails the export naming every place tried.
func TestExportFindsWhatTheRowMisplaces(t *testing.T) {
	fixtures(t)
	ctx := context.Background()
	const movedBucket = "exports-moved"
	movedOnce.Do(func() { movedErr = fx.minio.CreateBucket(movedBucket) })
	if movedErr != nil {
		t.Fatal(movedErr)
	}
	prefix := "misplaced/" + fmt.Sprint(relocationRuns.Add(1))
	save := t.TempDir()
	cat, err := catalog.Open(ctx, layout.Catalog(layout.DefaultStateDir(save)), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	client, err := uploader.NewClient(ctx, uploader.ClientConfig{Region: "us-east-1", Endpoint: fx.minio.Endpoint, PathStyle: true,
		AccessKeyID: fx.minio.AccessKey, SecretAccessKey: fx.minio.SecretKey, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	uploaded := make(chan catalog.Record, len(fx.recs))
	up := uploader.New(uploader.Config{Bucket: bucket, Prefix: prefix, SavePath: save, ClearAfterUpload: true},
		uploader.Deps{Log: zerolog.Nop(), Catalog: cat, S3: client, Redactor: redact.New(),
			OnUploaded: func(r catalog.Record, _ time.Duration) { uploaded <- r }})
	upCtx, stopUp := context.WithCancel(ctx)
	upDone := make(chan struct{})
	go func() { defer close(upDone); up.Run(upCtx) }()
	var recs []catalog.Record
	for _, r := range fx.recs[:2] {
		rel := layout.DayRel("door", r.start) + "/" + segment.Name("door", "f1", r.start, r.end, 0)
		path := filepath.Join(save, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, r.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := cat.Add(ctx, segment.Segment{Camera: "door", FeedID: "f1", Start: r.start, End: r.end, Path: path,
			Size: int64(len(r.data))}, uploader.Key(prefix, rel)); err != nil {
			t.Fatal(err)
		}
		up.Notify()
		select {
		case rec := <-uploaded:
			recs = append(recs, rec)
		case <-time.After(time.Minute):
			t.Fatalf("not uploaded: %+v", up.Status())
		}
	}
	stopUp()
	<-upDone
	// The rows say movedBucket (the locations remember both buckets).
	for _, r := range recs {
		row, _ := cat.Get(ctx, r.ID)
		if err := cat.MarkUploadedTo(ctx, r.ID, movedBucket, row.ETag, row.Verified); err != nil {
			t.Fatal(err)
		}
	}

	svc := NewService(ServiceConfig{Bucket: movedBucket, Prefix: prefix, Version: "test"},
		ServiceDeps{Catalog: cat, S3: client, Log: zerolog.Nop(), Locations: cat.Locations})
	defer svc.Close()
	from, to := fx.recs[0].start, fx.recs[1].end
	c, err := svc.Clip(ctx, "door", from, to)
	if err != nil {
		t.Fatalf("export of footage whose rows name the wrong bucket: %v", err)
	}
	m, err := c.Manifest(ctx)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sources) != 2 {
		t.Fatalf("%d sources, want 2", len(m.Sources))
	}
	for i, src := range m.Sources {
		if src.Bucket != bucket || src.Key != recs[i].Key || src.SHA256 != sha(fx.recs[i].data) ||
			!strings.Contains(src.Note, "s3://"+bucket+"/"+recs[i].Key) {
			t.Errorf("source %d: bucket %q key %q sha256 %s note %q; want it read from s3://%s/%s, and said so",
				i, src.Bucket, src.Key, src.SHA256, src.Note, bucket, recs[i].Key)
		}
	}
	if checks, err := Verify(ctx, &m, client, "", t.TempDir(), true); err != nil {
		t.Fatal(err)
	} else {
		for _, c := range checks[:2] {
			if c.Problem != "" {
				t.Errorf("verify %s: %s", c.What, c.Problem)
			}
		}
	}

	// Gone from S3 altogether: the error names where it was looked for.
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(recs[0].Key)}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Clip(ctx, "door", fx.recs[0].start, fx.recs[0].end)
	for _, want := range []string{"s3://" + movedBucket + "/" + recs[0].Key, "s3://" + bucket + "/" + recs[0].Key} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("export of a source S3 does not hold: %v, want it to name %s", err, want)
		}
	}
}
