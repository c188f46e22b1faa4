package uploader

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc64"
	"io"
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
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/filesum"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// These tests upload real files to a real MinIO on 127.0.0.1.

const bucket = "cctv-test"

type env struct {
	t       *testing.T
	minio   *testenv.MinIO
	save    string
	cat     *catalog.Catalog
	logs    *testenv.Buffer
	puts    atomic.Int64 // PutObject and CompleteMultipartUpload calls
	secret  string
	clientC ClientConfig
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := testenv.StartMinIO(t)
	m.CreateBucket(bucket)
	e := &env{t: t, minio: m, save: t.TempDir(), logs: &testenv.Buffer{}, secret: m.SecretKey}
	e.cat = e.openCatalog()
	e.clientC = ClientConfig{Region: "us-east-1", Endpoint: m.Endpoint, PathStyle: true, AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, MaxAttempts: 3}
	return e
}

func (e *env) openCatalog() *catalog.Catalog {
	c, err := catalog.Open(context.Background(), filepath.Join(e.save, ".cctvd", layout.CatalogName), e.save, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// countingClient is the real S3 client, counting the calls that write an
// object, so a test can tell an upload from a skipped one.
type countingClient struct {
	*s3.Client
	puts *atomic.Int64
}

func (c countingClient) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	c.puts.Add(1)
	return c.Client.PutObject(ctx, in, o...)
}

func (c countingClient) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, o ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	c.puts.Add(1)
	return c.Client.CompleteMultipartUpload(ctx, in, o...)
}

type running struct {
	t      *testing.T
	u      *Uploader
	cancel context.CancelFunc
	done   chan struct{}
	ok     chan catalog.Record
}

// run starts an uploader over the env's catalog.
func (e *env) run(cfg Config, cc ClientConfig) *running {
	e.t.Helper()
	r := e.runStopped(cfg, cc)
	r.start(e.t)
	return r
}

// runStopped makes an uploader over the env's catalog without starting it.
func (e *env) runStopped(cfg Config, cc ClientConfig) *running {
	e.t.Helper()
	client, err := NewClient(context.Background(), cc)
	if err != nil {
		e.t.Fatal(err)
	}
	if cfg.Bucket == "" {
		cfg.Bucket = bucket
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "rec/2025"
	}
	if cfg.SavePath == "" {
		cfg.SavePath = e.save
	}
	if cfg.RetryInitial == 0 {
		cfg.RetryInitial, cfg.RetryMax = 50*time.Millisecond, 500*time.Millisecond
	}
	r := &running{done: make(chan struct{}), ok: make(chan catalog.Record, 100)}
	r.u = New(cfg, Deps{
		Log:        zerolog.New(redact.NewWriter(redact.New(e.secret), e.logs)),
		Catalog:    e.cat,
		S3:         countingClient{Client: client, puts: &e.puts},
		Redactor:   redact.New(e.secret),
		OnUploaded: func(rec catalog.Record, _ time.Duration) { r.ok <- rec },
	})
	return r
}

// start runs the uploader until the test ends.
func (r *running) start(t *testing.T) {
	r.t = t
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { defer close(r.done); r.u.Run(ctx) }()
	t.Cleanup(r.stop)
}

func (r *running) stop() {
	r.cancel()
	await.Recv(r.t, r.done, 2*time.Minute, "uploader stop") // the shutdown grace is 30 s by default
}

// await waits for n verified uploads.
func (r *running) await(t *testing.T, n int, timeout time.Duration) []catalog.Record {
	t.Helper()
	var got []catalog.Record
	deadline := time.After(timeout)
	for len(got) < n {
		select {
		case rec := <-r.ok:
			got = append(got, rec)
		case <-deadline:
			t.Fatalf("%d of %d uploads after %v; status %+v", len(got), n, timeout, r.u.Status())
		}
	}
	return got
}

// awaitStatus waits for the uploader's status to satisfy cond.
func (r *running) awaitStatus(t *testing.T, timeout time.Duration, cond func(Status) bool) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.u.WaitFor(ctx, cond); err != nil {
		t.Fatalf("status never matched: %+v", r.u.Status())
	}
	return r.u.Status()
}

// mp4Head is an MP4 file's first box (ftyp), which the uploader's cheap
// check looks for: files of random bytes after it pass that check, and only
// files cctvd did not see close are decoded (those tests use real video).
var mp4Head = []byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41")

// mp4ish returns size bytes: an ftyp box, then random bytes.
func mp4ish(size int) []byte {
	data := make([]byte, size)
	rand.Read(data)
	copy(data, mp4Head)
	return data
}

// segmentPath is where a segment of camera starting at start lives.
func (e *env) segmentPath(camera string, start time.Time) (rel, path string) {
	rel = layout.DayRel(camera, start) + "/" + segment.Name(camera, "xx", start, start.Add(10*time.Second), 0)
	return rel, filepath.Join(e.save, rel)
}

// addSegment writes a file of size bytes (an ftyp box, then random bytes)
// and adds it to the catalog.
func (e *env) addSegment(camera string, start time.Time, size int) catalog.Record {
	e.t.Helper()
	return e.addFile(camera, start, mp4ish(size))
}

// addFile writes data as a segment and adds it to the catalog, as the
// segmenter does when it sees a segment close: with its checksums.
func (e *env) addFile(camera string, start time.Time, data []byte) catalog.Record {
	e.t.Helper()
	return e.addFileSums(camera, start, data, true)
}

// addFileSums is addFile, with the checksums the segmenter takes or
// without them (a row made otherwise, as by an older cctvd).
func (e *env) addFileSums(camera string, start time.Time, data []byte, withSums bool) catalog.Record {
	e.t.Helper()
	rel, p := e.segmentPath(camera, start)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	seg := segment.Segment{Camera: camera, FeedID: "xx", Start: start, End: start.Add(10 * time.Second), Path: p, Size: int64(len(data))}
	if withSums {
		sums, err := filesum.File(p)
		if err != nil {
			e.t.Fatal(err)
		}
		seg.SHA256, seg.CRC64, seg.CRC64Blocks = sums.SHA256, sums.CRC64, filesum.EncodeBlocks(sums.Blocks)
	}
	r, err := e.cat.Add(context.Background(), seg, Key("rec/2025", rel))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// assertInBucket checks the object is byte-identical to the local file, with its metadata.
func (e *env) assertInBucket(r catalog.Record, local []byte) {
	e.t.Helper()
	out, err := e.minio.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(r.Key)})
	if err != nil {
		e.t.Fatalf("get %s: %v", r.Key, err)
	}
	defer out.Body.Close()
	body, _ := io.ReadAll(out.Body)
	sum := sha256.Sum256(local)
	if got := sha256.Sum256(body); got != sum {
		e.t.Errorf("%s: object differs from the local file (%d vs %d bytes)", r.Key, len(body), len(local))
	}
	m := out.Metadata
	if m[MetaCamera] != r.Camera || m[MetaFeedID] != r.FeedID || m[MetaSHA256] != hex.EncodeToString(sum[:]) ||
		m[MetaStart] != r.Start.Format(MetaTimeLayout) || m[MetaEnd] != r.End.Format(MetaTimeLayout) {
		e.t.Errorf("%s: metadata %v", r.Key, m)
	}
}

var t0 = time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)

func TestHashFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		size     int
		partSize int64
		parts    string
	}{
		{"below the part size", 1000, 4096, ""},
		{"exactly the part size: one PUT", 4096, 4096, ""},
		{"parts and a remainder", 10000, 4096, "-3"},
		{"parts and no remainder", 8192, 4096, "-2"},
	}
	for _, tt := range tests {
		for _, withMD5 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, MD5 %v", tt.name, withMD5), func(t *testing.T) {
				data := make([]byte, tt.size)
				rand.Read(data)
				p := filepath.Join(dir, tt.name)
				os.WriteFile(p, data, 0o644)
				f, _ := os.Open(p)
				defer f.Close()
				part := partSize(int64(tt.size), tt.partSize)
				c, err := hashFile(f, int64(tt.size), part, withMD5)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(data)
				if c.sha256 != hex.EncodeToString(sum[:]) || c.sha256b64 != base64.StdEncoding.EncodeToString(sum[:]) {
					t.Error("sha256 differs")
				}
				wantParts := tt.parts
				if !withMD5 {
					wantParts = ""
				}
				if !strings.HasSuffix(c.multipartETag, wantParts) || (wantParts == "") != (c.multipartETag == "") {
					t.Errorf("multipart ETag %q, want suffix %q", c.multipartETag, wantParts)
				}
				if m := md5.Sum(data); (part == 0 && withMD5) != (c.md5 == hex.EncodeToString(m[:])) {
					t.Errorf("MD5 %q for part size %d", c.md5, part)
				}
				// S3's CRC-64/NVME: the whole file's equals one computed over
				// the bytes by the standard library's tables; each part's,
				// over its bytes.
				if c.crc64b64 != filesum.CRC64Base64(crc64.Checksum(data, crc64NVME)) {
					t.Errorf("whole-file CRC-64/NVME %s", c.crc64b64)
				}
				if part == 0 && c.partCRC64 != nil {
					t.Errorf("part CRCs %v for a single PUT", c.partCRC64)
				}
				for i := range c.partCRC64 {
					p := data[int64(i)*part : min(int64(i+1)*part, int64(tt.size))]
					if c.partCRC64[i] != filesum.CRC64Base64(crc64.Checksum(p, crc64NVME)) {
						t.Errorf("part %d CRC", i+1)
					}
				}
				if part > 0 {
					if want := (int64(tt.size) + part - 1) / part; int64(len(c.partCRC64)) != want {
						t.Errorf("%d part CRCs, want %d", len(c.partCRC64), want)
					}
				}
				if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
					t.Error("file not rewound")
				}
			})
		}
	}
}

// crc64NVME is CRC-64/NVME through the standard library's tables: the
// tests' reference for the carry-less multiplication of package filesum.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

func TestRetryDelay(t *testing.T) {
	for _, tt := range []struct {
		attempts int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {5, 16 * time.Second}, {9, 256 * time.Second}, {10, 5 * time.Minute}, {40, 5 * time.Minute}} {
		got := retryDelay(tt.attempts, time.Second, 5*time.Minute)
		if got < tt.want*8/10 || got > tt.want*12/10 {
			t.Errorf("retryDelay(%d) = %v, want %v ±20%%", tt.attempts, got, tt.want)
		}
	}
}

// heldClient holds the first PutObject until released, and says when it
// has one.
type heldClient struct {
	S3API
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (h *heldClient) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	first := false
	h.once.Do(func() { first = true; close(h.started) })
	if first {
		<-h.release
	}
	return h.S3API.PutObject(ctx, in, o...)
}

// TestStopUploadsWhatWaitsWithinTheGrace: at a stop the uploader finishes
// the upload under way and, while S3 answers, starts the segments still
// waiting (the stop closed the cameras' last segments just before), all
// within the grace: after a planned power-off S3 has the last footage.
func TestStopUploadsWhatWaitsWithinTheGrace(t *testing.T) {
	e := newEnv(t)
	var recs []catalog.Record
	for i := range 3 {
		recs = append(recs, e.addSegment("cam1", t0.Add(time.Duration(i)*10*time.Second), 64<<10))
	}
	client, err := NewClient(context.Background(), e.clientC)
	if err != nil {
		t.Fatal(err)
	}
	held := &heldClient{S3API: client, started: make(chan struct{}), release: make(chan struct{})}
	u := New(Config{Bucket: bucket, Prefix: "rec/2025", SavePath: e.save, Concurrency: 1, ShutdownGrace: 20 * time.Second},
		Deps{Log: zerolog.New(e.logs), Catalog: e.cat, S3: held, Redactor: redact.New()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	select {
	case <-held.started:
	case <-time.After(30 * time.Second):
		t.Fatal("no upload started")
	}
	cancel() // the stop: one upload under way, two waiting
	close(held.release)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the uploader did not stop within its grace")
	}
	for _, r := range recs {
		got, err := e.cat.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Upload != catalog.Uploaded {
			t.Errorf("%s: %s after the stop, want uploaded\n%s", got.Name(), got.Upload, e.logs.String())
		}
	}
}
