//go:build integration

package uploader

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
)

// requestLog records the headers of every request the S3 client sends.
type requestLog struct {
	inner interface {
		Do(*http.Request) (*http.Response, error)
	}
	mu   sync.Mutex
	reqs []loggedRequest
}

type loggedRequest struct {
	method, query string
	header        http.Header
}

func (l *requestLog) Do(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.reqs = append(l.reqs, loggedRequest{r.Method, r.URL.RawQuery, r.Header.Clone()})
	l.mu.Unlock()
	return l.inner.Do(r)
}

// TestVerifiedOnEveryKindOfBucket uploads a single-PUT and a multipart
// segment to buckets with default SSE-S3 and SSE-KMS encryption, with
// object lock (governance retention), and to a plain one, on a MinIO that
// serves HTTPS: each goes up at the first attempt, verified by the checksum
// S3 computed, without a warning. The checksums travel as headers, never as
// aws-chunked trailers (which MinIO over HTTPS refuses above 16 MiB).
func TestVerifiedOnEveryKindOfBucket(t *testing.T) {
	m := testenv.StartMinIOWith(t, testenv.MinIOOptions{KMS: true, TLS: true})
	t.Setenv("AWS_CA_BUNDLE", m.CAFile) // how a box trusts a private CA: the client honours it
	buckets := map[string]testenv.BucketOptions{
		"plain":   {},
		"sse-s3":  {Encryption: types.ServerSideEncryptionAes256},
		"sse-kms": {Encryption: types.ServerSideEncryptionAwsKms},
		"locked":  {ObjectLock: true},
	}
	small := mp4ish(300 << 10)
	big := mp4ish(17 << 20) // 2 parts of 16 MiB: 16, 1
	for name, opts := range buckets {
		m.CreateBucketWith(name, opts)
		t.Run(name, func(t *testing.T) {
			e := &env{t: t, minio: m, save: t.TempDir(), logs: &testenv.Buffer{}, secret: m.SecretKey}
			e.cat = e.openCatalog()
			cc := ClientConfig{Region: "us-east-1", Endpoint: m.Endpoint, PathStyle: true, AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, MaxAttempts: 3}
			client, err := NewClient(context.Background(), cc)
			if err != nil {
				t.Fatal(err)
			}
			opts := client.Options()
			reqs := &requestLog{inner: opts.HTTPClient}
			opts.HTTPClient = reqs
			recs := []catalog.Record{e.addFile("cam1", t0, small), e.addFile("cam1", t0.Add(10*time.Second), big)}
			done := make(chan catalog.Record, 2)
			u := New(Config{Bucket: name, Prefix: "rec/2025", SavePath: e.save}, Deps{
				Log: zerolog.New(redact.NewWriter(redact.New(e.secret), e.logs)), Catalog: e.cat, S3: s3.New(opts),
				Redactor: redact.New(e.secret), OnUploaded: func(r catalog.Record, _ time.Duration) { done <- r }})
			run := &running{u: u, done: make(chan struct{}), ok: done}
			run.start(t)
			run.await(t, 2, 2*time.Minute)

			st := u.Status()
			if st.Failures != 0 || st.VerifyFailures != 0 || st.Uploaded != 2 {
				t.Errorf("status %+v", st)
			}
			for _, line := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
					t.Errorf("logged: %s", line)
				}
			}
			for i, want := range []string{VerifiedSHA256, VerifiedCRC64NVME} {
				row, _ := e.cat.Get(context.Background(), recs[i].ID)
				if row.Upload != catalog.Uploaded || row.Verified != want {
					t.Errorf("%s: %s, verified by %q, want %q", recs[i].Name(), row.Upload, row.Verified, want)
				}
				got, meta := e.object(name, recs[i].Key)
				local, _ := os.ReadFile(recs[i].Path)
				if !bytes.Equal(got, local) || meta[MetaSHA256] != shaHex(local) {
					t.Errorf("%s: the object differs from the file", recs[i].Key)
				}
				h, err := m.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(name), Key: aws.String(recs[i].Key)})
				if err != nil {
					t.Fatal(err)
				}
				if opts := buckets[name]; h.ServerSideEncryption != opts.Encryption ||
					(opts.ObjectLock && h.ObjectLockMode != types.ObjectLockModeGovernance) {
					t.Errorf("%s: encryption %q, lock %q: the bucket's defaults did not apply", recs[i].Key, h.ServerSideEncryption, h.ObjectLockMode)
				}
			}
			checkHeaders(t, reqs)
		})
	}
}

// checkHeaders: every body went with its checksum in a header, and the
// writes were conditional; no PutObject needed the file read before it
// (Content-MD5).
func checkHeaders(t *testing.T, reqs *requestLog) {
	t.Helper()
	reqs.mu.Lock()
	defer reqs.mu.Unlock()
	var puts, parts, completes int
	for _, r := range reqs.reqs {
		if r.header.Get("X-Amz-Trailer") != "" || strings.Contains(r.header.Get("Content-Encoding"), "aws-chunked") {
			t.Errorf("%s ?%s sent an aws-chunked trailer", r.method, r.query)
		}
		switch {
		case r.method == http.MethodPut && strings.Contains(r.query, "partNumber="):
			parts++
			if r.header.Get("X-Amz-Checksum-Crc64nvme") == "" {
				t.Errorf("UploadPart without its CRC-64/NVME: %v", r.header)
			}
		case r.method == http.MethodPut:
			puts++
			// No Content-MD5: the file is read once, by the send (hash.go);
			// S3 checks the SHA-256 instead.
			if r.header.Get("X-Amz-Checksum-Sha256") == "" || r.header.Get("If-None-Match") != "*" || r.header.Get("Content-Md5") != "" {
				t.Errorf("PutObject headers: %v", r.header)
			}
		case r.method == http.MethodPost && strings.Contains(r.query, "uploadId="):
			completes++
			if r.header.Get("X-Amz-Checksum-Crc64nvme") == "" || r.header.Get("X-Amz-Checksum-Type") != "FULL_OBJECT" || r.header.Get("If-None-Match") != "*" {
				t.Errorf("CompleteMultipartUpload headers: %v", r.header)
			}
		}
	}
	if puts != 1 || parts != 2 || completes != 1 {
		t.Errorf("%d PutObject, %d UploadPart, %d CompleteMultipartUpload; want 1, 2, 1", puts, parts, completes)
	}
}
