//go:build integration

package uploader

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestResumeOfAFileChangedUnderItsMtimeIsHashedAgain (review3): a
// multipart upload is cut after part 1; the file then reads differently in
// part 2 (a bad sector, a rewrite that kept size and mtime). multipart.go's
// comment promises that S3 refuses the part sent with the old CRC and that
// "its next attempt hashes it again". resumable() trusts size and mtime
// only, and nothing drops the record after a refused part, so every
// attempt resumes with the old checksums and fails again: the segment
// never goes up.
func TestResumeOfAFileChangedUnderItsMtimeIsHashedAgain(t *testing.T) {
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
	cancel()
	<-done
	if _, ok, _ := e.cat.MultipartOf(context.Background(), r.ID); !ok {
		t.Fatal("no resume record after the cut")
	}
	fi, err := os.Stat(r.Path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(r.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], 20<<20); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], 20<<20); err != nil { // in part 2
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(r.Path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}

	run := e.run(Config{}, e.clientC)
	select {
	case <-run.ok:
	case <-time.After(60 * time.Second):
		st := run.u.Status()
		t.Fatalf("not uploaded after 60 s (%d failed attempts, last error %q): each attempt resumed with the old checksums",
			st.Failures, st.LastError)
	}
	local, _ := os.ReadFile(r.Path)
	e.assertInBucket(r, local)
}
