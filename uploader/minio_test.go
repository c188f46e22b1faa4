//go:build integration

package uploader

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/await"
)

func TestUploadsSmallAndMultipartVerified(t *testing.T) {
	e := newEnv(t)
	var recs []catalog.Record
	var files [][]byte
	for i, size := range []int{1 << 20, 200 << 10, 3 << 20} {
		r := e.addSegment("cam1", t0.Add(time.Duration(i)*10*time.Second), size)
		recs = append(recs, r)
	}
	big := e.addSegment("cam2", t0, 100<<20+12345) // 100 MB+: multipart, 7 parts of 16 MiB
	recs = append(recs, big)
	for _, r := range recs {
		b, _ := os.ReadFile(r.Path)
		files = append(files, b)
	}
	run := e.run(Config{}, e.clientC)
	run.await(t, len(recs), 2*time.Minute)
	for i, r := range recs {
		got, err := e.cat.Get(context.Background(), r.ID)
		if err != nil || got.Upload != catalog.Uploaded || got.Local != catalog.Present || got.ETag == "" {
			t.Errorf("row %s: %+v %v", r.Name(), got, err)
		}
		e.assertInBucket(r, files[i])
		if r.ID == big.ID && !strings.HasSuffix(strings.Trim(got.ETag, `"`), "-7") {
			t.Errorf("100 MB file's ETag %s: want a 7-part multipart upload", got.ETag)
		}
	}
	if n := e.minio.MultipartUploads(bucket, big.Key); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
	if !strings.HasPrefix(big.Key, "rec/2025/cam2/2026-01-06/cam2_xx_20260106T120000Z_") {
		t.Errorf("key = %s", big.Key)
	}
}

func TestOutageKeepsEverythingAndRecovers(t *testing.T) {
	e := newEnv(t)
	e.minio.Stop()
	run := e.run(Config{}, e.clientC)
	var recs []catalog.Record
	for i := range 3 {
		recs = append(recs, e.addSegment("cam1", t0.Add(time.Duration(i)*10*time.Second), 64<<10))
		run.u.Notify()
	}
	st := run.awaitStatus(t, 30*time.Second, func(s Status) bool { return s.Failures >= 6 })
	if st.State != Failing || !strings.HasPrefix(st.LastError, "S3 unreachable: dial tcp 127.0.0.1:") {
		t.Errorf("status while S3 is down: %+v", st)
	}
	// More segments close during the outage.
	for i := 3; i < 5; i++ {
		recs = append(recs, e.addSegment("cam1", t0.Add(time.Duration(i)*10*time.Second), 64<<10))
		run.u.Notify()
	}
	run.awaitStatus(t, 30*time.Second, func(s Status) bool { return s.Failures >= st.Failures+4 })
	for _, r := range recs {
		got, _ := e.cat.Get(context.Background(), r.ID)
		if got.Upload == catalog.Uploaded || got.Local != catalog.Present {
			t.Fatalf("during the outage %s is %s/%s", r.Name(), got.Upload, got.Local)
		}
	}
	if n := strings.Count(e.logs.String(), `"level":"warn"`); n != 1 {
		t.Errorf("%d warnings for one outage, want 1 (once per change, not per retry):\n%s", n, e.logs.String())
	}
	e.minio.Start()
	run.await(t, len(recs), 60*time.Second)
	for _, r := range recs {
		b, _ := os.ReadFile(r.Path)
		e.assertInBucket(r, b)
	}
	if st := run.awaitStatus(t, 10*time.Second, func(s Status) bool { return s.State != Failing }); st.LastError != "" {
		t.Errorf("status after recovery: %+v", st)
	}
	if !strings.Contains(e.logs.String(), "S3 uploads work again") {
		t.Error("recovery not logged")
	}
}

func TestWrongCredentialsAndMissingBucket(t *testing.T) {
	e := newEnv(t)
	r := e.addSegment("cam1", t0, 10<<10)
	bad := e.clientC
	bad.AccessKeyID = "not-the-key"
	run := e.run(Config{}, bad)
	st := run.awaitStatus(t, 30*time.Second, func(s Status) bool { return s.State == Failing })
	if !strings.HasPrefix(st.LastError, "S3 refused the credentials (InvalidAccessKeyId)") {
		t.Errorf("status with a wrong key: %+v", st)
	}
	run.stop()

	run = e.run(Config{Bucket: "no-such-bucket"}, e.clientC)
	st = run.awaitStatus(t, 30*time.Second, func(s Status) bool { return s.State == Failing })
	if st.LastError != `bucket "no-such-bucket" does not exist` {
		t.Errorf("status without the bucket: %+v", st)
	}
	if _, err := os.Stat(r.Path); err != nil {
		t.Fatalf("file not kept: %v", err)
	}
	// Fixed (the bucket created): it recovers without a restart.
	e.minio.CreateBucket("no-such-bucket")
	run.await(t, 1, 30*time.Second)
	if strings.Contains(e.logs.String(), e.secret) {
		t.Error("logs hold the secret key")
	}
}

func TestClearAfterUpload(t *testing.T) {
	for _, clear := range []bool{true, false} {
		t.Run(map[bool]string{true: "true", false: "false"}[clear], func(t *testing.T) {
			e := newEnv(t)
			r := e.addSegment("cam1", t0, 20<<10)
			local, _ := os.ReadFile(r.Path)
			run := e.run(Config{ClearAfterUpload: clear}, e.clientC)
			run.await(t, 1, 30*time.Second)
			e.assertInBucket(r, local)
			got, _ := e.cat.Get(context.Background(), r.ID)
			_, statErr := os.Stat(r.Path)
			if clear && (!errors.Is(statErr, os.ErrNotExist) || got.Local != catalog.Deleted || got.DeleteCause != catalog.CauseClearAfterUpload) {
				t.Errorf("clearAfterUpload: file %v, row %+v", statErr, got)
			}
			if !clear && (statErr != nil || got.Local != catalog.Present || got.Upload != catalog.Uploaded) {
				t.Errorf("keep: file %v, row %+v", statErr, got)
			}
		})
	}
}

func TestRebuiltCatalogDoesNotUploadTwice(t *testing.T) {
	e := newEnv(t)
	r1 := e.addSegment("cam1", t0, 30<<10)
	run := e.run(Config{}, e.clientC)
	run.await(t, 1, 30*time.Second)
	run.stop()
	// Lose the catalog; a segment closes meanwhile that S3 never saw.
	e.cat.Close()
	os.RemoveAll(filepath.Join(e.save, ".cctvd"))
	e.cat = e.openCatalog()
	res, err := e.cat.Reconcile(context.Background(), func(rel string) string { return Key("rec/2025", rel) })
	if err != nil || res.Added != 1 {
		t.Fatalf("reconcile: %+v %v", res, err)
	}
	r2 := e.addSegment("cam1", t0.Add(10*time.Second), 30<<10)
	puts := e.puts.Load()
	run = e.run(Config{}, e.clientC)
	run.await(t, 2, 30*time.Second)
	if n := e.puts.Load() - puts; n != 1 {
		t.Errorf("%d objects written, want 1: the rebuilt row was verified in S3 by a HEAD", n)
	}
	for _, r := range []catalog.Record{r1, r2} {
		got, _ := e.cat.ByPath(context.Background(), r.Path)
		if got.Upload != catalog.Uploaded {
			t.Errorf("%s: %s", r.Name(), got.Upload)
		}
	}
	if !strings.Contains(e.logs.String(), "already in S3, verified") {
		t.Error("skipped upload not logged")
	}
}

func TestInterruptedMultipartUploadsAreAborted(t *testing.T) {
	e := newEnv(t)
	r := e.addSegment("cam1", t0, 40<<20)
	ctx := context.Background()
	client := e.minio.Client()
	// What a crash mid-upload leaves: one multipart upload the catalog
	// knows about, and one it never heard of (created just before the crash).
	orphan := func() string {
		out, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(r.Key)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(r.Key), UploadId: out.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(make([]byte, 5<<20))})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.UploadId)
	}
	known := orphan()
	orphan()
	e.cat.StartAttempt(ctx, r.ID)
	e.cat.SetUploadID(ctx, r.ID, known)
	if n := e.minio.MultipartUploads(bucket, r.Key); n != 2 {
		t.Fatalf("setup: %d multipart uploads", n)
	}
	run := e.run(Config{}, e.clientC)
	run.await(t, 1, time.Minute)
	if n := e.minio.MultipartUploads(bucket, r.Key); n != 0 {
		t.Errorf("%d orphan multipart uploads remain", n)
	}
	local, _ := os.ReadFile(r.Path)
	e.assertInBucket(r, local)
}

// gatedClient is the real client with one instrument: UploadPart of part
// 2 and later blocks until its context ends, so a shutdown always finds the
// multipart upload under way.
type gatedClient struct {
	S3API
	started chan struct{}
	once    sync.Once
}

func (g *gatedClient) UploadPart(ctx context.Context, in *s3.UploadPartInput, o ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if aws.ToInt32(in.PartNumber) >= 2 {
		g.once.Do(func() { close(g.started) })
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return g.S3API.UploadPart(ctx, in, o...)
}

// TestShutdownLeavesAMultipartUploadToResume: a shutdown that cuts a
// multipart upload short keeps it (and its record) for the next run, which
// sends only the parts S3 lacks and leaves no upload behind.
func TestShutdownLeavesAMultipartUploadToResume(t *testing.T) {
	e := newEnv(t)
	r := e.addSegment("cam1", t0, 40<<20) // 3 parts of 16 MiB
	client, err := NewClient(context.Background(), e.clientC)
	if err != nil {
		t.Fatal(err)
	}
	gate := &gatedClient{S3API: client, started: make(chan struct{})}
	u := New(Config{Bucket: bucket, Prefix: "rec/2025", ShutdownGrace: 100 * time.Millisecond, PartConcurrency: 1},
		Deps{Log: zerolog.New(e.logs), Catalog: e.cat, S3: gate})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	select {
	case <-gate.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the multipart upload never reached part 2")
	}
	if n := e.minio.MultipartUploads(bucket, r.Key); n != 1 {
		t.Fatalf("%d multipart uploads under way, want 1", n)
	}
	cancel()
	await.Recv(t, done, 30*time.Second, "uploader stop")
	got, _ := e.cat.Get(context.Background(), r.ID)
	rec, ok, err := e.cat.MultipartOf(context.Background(), r.ID)
	if got.Upload != catalog.Pending || got.UploadID == "" || !got.VerifyRemote || err != nil || !ok || rec.UploadID != got.UploadID ||
		len(rec.Parts) != 1 || rec.Parts[0].Number != 1 {
		t.Errorf("after a cut-short upload: row %+v, record %+v %v %v", got, rec, ok, err)
	}
	if n := e.minio.MultipartUploads(bucket, r.Key); n != 1 {
		t.Errorf("%d multipart uploads left after shutdown, want the one to resume", n)
	}
	run := e.run(Config{}, e.clientC)
	run.await(t, 1, time.Minute)
	if st := run.u.Status(); st.PartsSent != 2 || st.PartBytesSent != 40<<20-16<<20 {
		t.Errorf("the resumed upload sent %d parts, %d bytes: want the 2 S3 lacked", st.PartsSent, st.PartBytesSent)
	}
	local, _ := os.ReadFile(r.Path)
	e.assertInBucket(r, local)
	if n := e.minio.MultipartUploads(bucket, r.Key); n != 0 {
		t.Errorf("%d multipart uploads left after the resumed upload", n)
	}
	if _, ok, _ := e.cat.MultipartOf(context.Background(), r.ID); ok {
		t.Error("the record outlived the upload")
	}
}
