//go:build integration

package export

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
