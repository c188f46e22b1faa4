//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// transcodeConfig is the setup's config with the camera in transcode mode:
// without the stream probe of mode auto (about 3 s on a loaded machine),
// the time to recording is cctvd's own start-up and ffmpeg's connection.
func transcodeConfig(t *testing.T, s *setup) string {
	t.Helper()
	path := s.writeConfig(t)
	cfg := strings.Replace(readFile(t, path), `"rtspPath": "/cam1"`, `"rtspPath": "/cam1", "mode": "transcode"`, 1)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// objectState is what a PUT changes: an object written again gets a new
// LastModified (MinIO keeps it to the nanosecond) and, for other content,
// a new ETag.
type objectState struct {
	ETag         string
	LastModified time.Time
	Size         int64
}

// bucketState reads every object under prefix.
func bucketState(t *testing.T, s *setup, prefix string) map[string]objectState {
	t.Helper()
	out := map[string]objectState{}
	for _, o := range s.minio.List("test-bucket", prefix) {
		h, err := s.minio.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("test-bucket"), Key: aws.String(o.Key)})
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = objectState{ETag: aws.ToString(h.ETag), LastModified: aws.ToTime(h.LastModified), Size: aws.ToInt64(h.ContentLength)}
	}
	return out
}

// awaitUploads waits for n "uploaded and verified" lines from index from
// on and returns the segments' names.
func awaitUploads(d *proc, from, n int, timeout time.Duration) []string {
	d.t.Helper()
	var names []string
	i := from
	for len(names) < n {
		line, j := d.await(i, timeout, msgIs("uploaded and verified"))
		names = append(names, line["segment"].(string))
		i = j + 1
	}
	return names
}

func stop(t *testing.T, d *proc) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(60 * time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, d.output())
	}
}

// apiRecording is a catalog row as the API lists it.
type apiRecording struct {
	Name   string    `json:"name"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Upload string    `json:"upload"`
	Local  string    `json:"local"`
	S3Key  string    `json:"s3Key"`
	SHA256 string    `json:"sha256"`
}

// TestGarbageCatalog: cctvd recorded and uploaded, some local files went
// (as clearAfterUpload or retention delete them), then catalog.db became
// garbage. cctvd records within 5 s of start all the same, keeps the
// garbage aside, and rebuilds the catalog from the disk and from S3: every
// segment S3 holds is uploaded in the new catalog, and none is uploaded
// again.
func TestGarbageCatalog(t *testing.T) {
	s := newSetup(t, 2)
	cfg := transcodeConfig(t, s)
	started := time.Now()
	d := startDaemon(t, "run", "--config", cfg)
	d.await(0, 30*time.Second, msgIs("recording"))
	baseline := time.Since(started)
	uploaded := awaitUploads(d, 0, 4, 60*time.Second)
	stop(t, d)

	pathOf := func(name string) string {
		info, err := segment.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(s.savePath, layout.DayRel(info.Camera, info.Start), name)
	}
	gone := uploaded[:2] // deleted locally after upload
	for _, name := range gone {
		if err := os.Remove(pathOf(name)); err != nil {
			t.Fatal(err)
		}
	}
	before := bucketState(t, s, "rec/2025/")
	if len(before) < 4 {
		t.Fatalf("only %d objects in the bucket", len(before))
	}
	dbPath := filepath.Join(s.savePath, ".cctvd", layout.CatalogName)
	garbage := make([]byte, 64<<10)
	rand.Read(garbage)
	if err := os.WriteFile(dbPath, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(dbPath + "-wal")
	os.Remove(dbPath + "-shm")

	started = time.Now()
	d2 := startDaemon(t, "run", "--config", cfg)
	d2.await(0, 5*time.Second, msgIs("recording"))
	t.Logf("recording %v after start with a garbage catalog (%v with a new one)", time.Since(started).Round(time.Millisecond), baseline.Round(time.Millisecond))
	d2.await(0, 60*time.Second, msgIs("catalog rebuilt from S3"))
	// The files still on disk that S3 has are checked, not sent again.
	for _, name := range uploaded[2:] {
		d2.await(0, 60*time.Second, func(m map[string]any) bool {
			return m["message"] == "already in S3, verified; not uploading again" && m["segment"] == name
		})
	}

	c := newClient(t, d2, "")
	var page struct {
		Recordings []apiRecording `json:"recordings"`
	}
	c.json("GET", "/api/v1/recordings?limit=1000", 200, &page)
	rows := map[string]apiRecording{}
	for _, r := range page.Recordings {
		rows[r.Name] = r
	}
	for _, name := range uploaded {
		r, ok := rows[name]
		if !ok {
			t.Errorf("%s has no row in the rebuilt catalog", name)
			continue
		}
		wantLocal := "present"
		for _, g := range gone {
			if g == name {
				wantLocal = "deleted"
			}
		}
		if r.Upload != "uploaded" || r.Local != wantLocal || r.SHA256 == "" || before[r.S3Key].Size == 0 {
			t.Errorf("%s: %+v, want uploaded and %s", name, r, wantLocal)
		}
	}
	var st struct {
		Catalog struct {
			State      string   `json:"state"`
			Fresh      bool     `json:"fresh"`
			MovedAside []string `json:"movedAside"`
		} `json:"catalog"`
	}
	c.json("GET", "/api/v1/status", 200, &st)
	if st.Catalog.State != "ready" || !st.Catalog.Fresh || len(st.Catalog.MovedAside) != 1 {
		t.Errorf("catalog status %+v", st.Catalog)
	}
	stop(t, d2)

	after := bucketState(t, s, "rec/2025/")
	for key, b := range before {
		if a := after[key]; a != b {
			t.Errorf("%s was written again: %+v, before %+v", key, a, b)
		}
	}
	kept, _ := filepath.Glob(dbPath + ".corrupt-*")
	if len(kept) != 1 {
		t.Fatalf("moved-aside catalogs: %v", kept)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || string(b) != string(garbage) {
		t.Errorf("the garbage catalog was not kept as it was: %v", err)
	}
	if !strings.Contains(d2.output(), kept[0]) {
		t.Error("the move aside was not logged with its path")
	}
	assertNoSecret(t, d.output()+d2.output(), s.minio.SecretKey)
}

// TestCorruptPageRecordsAndRebuilds: one page of the catalog overwritten,
// as the issue measured (cctvd used to exit 1 before any camera started).
func TestCorruptPageRecordsAndRebuilds(t *testing.T) {
	s := newSetup(t, 2)
	cfg := transcodeConfig(t, s)
	d := startDaemon(t, "run", "--config", cfg)
	awaitUploads(d, 0, 2, 60*time.Second)
	stop(t, d)
	dbPath := filepath.Join(s.savePath, ".cctvd", layout.CatalogName)
	f, err := os.OpenFile(dbPath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	rand.Read(junk)
	f.WriteAt(junk, 4096) // page 2: the first table's root
	f.Close()

	d2 := startDaemon(t, "run", "--config", cfg)
	d2.await(0, 5*time.Second, msgIs("recording"))
	d2.await(0, 30*time.Second, func(m map[string]any) bool {
		return m["message"] == "the catalog cannot be used: moved it aside (kept, never deleted); a new one is built from the disk and S3"
	})
	awaitUploads(d2, 0, 1, 60*time.Second)
	stop(t, d2)
	if kept, _ := filepath.Glob(dbPath + ".corrupt-*"); len(kept) != 1 {
		t.Errorf("moved-aside catalogs: %v", kept)
	}
}
