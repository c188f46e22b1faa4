package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
)

// fakeOldS3 is a fake S3 server (a fake, named as such: MinIO implements
// conditional writes, so the one branch for servers that do not cannot be
// reached with it). It stands for an older S3-compatible server: it answers
// 501 NotImplemented to If-None-Match, keeps no checksums, and gives MD5
// ETags. It is strict: it serves HEAD and single PUTs of objects in one
// bucket, and an empty list of multipart uploads, and fails the test on
// any other request.
type fakeOldS3 struct {
	t       *testing.T
	bucket  string
	mu      sync.Mutex
	objects map[string]fakeObject
	// conditional counts the writes that carried If-None-Match.
	conditional int
	puts        int
	withMD5     int // writes that carried a Content-MD5
}

type fakeObject struct {
	data []byte
	meta http.Header
}

func (f *fakeOldS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := r.URL.Query(); r.Method == http.MethodGet && r.URL.Path == "/"+f.bucket && q.Has("uploads") {
		// The start-up sweep's listing of multipart uploads: none here.
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>%s</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`, f.bucket)
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, "/"+f.bucket+"/")
	if q := r.URL.Query(); !ok || key == "" || len(q) > 1 || (len(q) == 1 && q.Get("x-id") != "PutObject") {
		f.t.Errorf("fake S3: unexpected request %s %s", r.Method, r.URL)
		http.Error(w, "unexpected", http.StatusBadRequest)
		return
	}
	switch r.Method {
	case http.MethodHead:
		o, ok := f.objects[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		for k, v := range o.meta {
			w.Header()[k] = v
		}
		sum := md5.Sum(o.data)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		w.Header().Set("Content-Length", fmt.Sprint(len(o.data)))
		w.WriteHeader(http.StatusOK)
	case http.MethodPut:
		if r.Header.Get("If-None-Match") != "" {
			f.conditional++
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code>`+
				`<Message>A header you provided implies functionality that is not implemented</Message><Header>If-None-Match</Header></Error>`)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			f.t.Errorf("fake S3: read body: %v", err)
			return
		}
		sum := md5.Sum(body)
		if got := r.Header.Get("Content-Md5"); got != "" {
			f.withMD5++
			if got != base64.StdEncoding.EncodeToString(sum[:]) {
				f.t.Errorf("fake S3: PUT %s with the wrong Content-MD5", key)
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		meta := http.Header{}
		for k, v := range r.Header {
			if strings.HasPrefix(k, "X-Amz-Meta-") {
				meta[k] = v
			}
		}
		f.puts++
		f.objects[key] = fakeObject{data: body, meta: meta}
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		w.WriteHeader(http.StatusOK)
	default:
		f.t.Errorf("fake S3: unexpected request %s %s", r.Method, r.URL)
		http.Error(w, "unexpected", http.StatusBadRequest)
	}
}

// TestServerWithoutConditionalWrites: a server that answers 501 to
// If-None-Match gets a HEAD before every write instead (the first 501 is
// remembered for the client), and different content there is still never
// overwritten; it keeps no checksums, so uploads are verified by the MD5
// ETag (the first, sent in one read, by reading the file again; the
// others read it first and send their Content-MD5).
func TestServerWithoutConditionalWrites(t *testing.T) {
	testenv.ClearAWSEnv(t)
	fake := &fakeOldS3{t: t, bucket: "old", objects: map[string]fakeObject{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	e := &env{t: t, save: t.TempDir(), logs: &testenv.Buffer{}, secret: "fake-secret-key"}
	e.cat = e.openCatalog()
	client, err := NewClient(context.Background(), ClientConfig{Region: "us-east-1", Endpoint: srv.URL, PathStyle: true,
		AccessKeyID: "fake", SecretAccessKey: e.secret, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var recs []catalog.Record
	for i := range 3 {
		recs = append(recs, e.addSegment("cam1", t0.Add(time.Duration(i)*10*time.Second), 50<<10))
	}
	planted := []byte("someone else's object")
	fake.objects[recs[2].Key] = fakeObject{data: planted, meta: http.Header{}}

	done := make(chan catalog.Record, 3)
	u := New(Config{Bucket: "old", Prefix: "rec/2025", SavePath: e.save, Concurrency: 1}, Deps{
		Log: zerolog.New(redact.NewWriter(redact.New(e.secret), e.logs)), Catalog: e.cat, S3: client,
		Redactor: redact.New(e.secret), OnUploaded: func(r catalog.Record, _ time.Duration) { done <- r }})
	run := &running{u: u, done: make(chan struct{}), ok: done}
	run.start(t)
	run.await(t, 3, time.Minute)
	run.stop()

	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.conditional != 1 || fake.puts != 3 {
		t.Errorf("%d conditional writes (want 1: remembered after the 501), %d writes (want 3)", fake.conditional, fake.puts)
	}
	if fake.withMD5 != 2 {
		// The first upload goes in one read, without it; its answer shows a
		// server that keeps no checksums, so the others read the file first.
		t.Errorf("%d writes with a Content-MD5, want 2", fake.withMD5)
	}
	if !bytes.Equal(fake.objects[recs[2].Key].data, planted) {
		t.Error("the planted object was overwritten")
	}
	for _, r := range recs {
		row, _ := e.cat.Get(context.Background(), r.ID)
		local, _ := os.ReadFile(r.Path)
		if row.Upload != catalog.Uploaded || row.Verified != VerifiedETag || !bytes.Equal(fake.objects[row.Key].data, local) {
			t.Errorf("%s: %s, verified %q, key %s", r.Name(), row.Upload, row.Verified, row.Key)
		}
		if (r.ID == recs[2].ID) != (row.ConflictKey == r.Key) {
			t.Errorf("%s: conflict key %q", r.Name(), row.ConflictKey)
		}
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "does not implement conditional writes"); n != 1 {
		t.Errorf("%d notices of the missing conditional writes, want 1:\n%s", n, logs)
	}
	if st := u.Status(); st.Failures != 0 || st.Conflicts != 1 {
		t.Errorf("status %+v", st)
	}
}
