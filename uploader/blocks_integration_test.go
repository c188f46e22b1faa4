//go:build integration

package uploader

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/filesum"
	"github.com/cctvd/cctvd/segment"
)

// TestPartsCarryTheCRCsTakenAtClose: a multipart upload's parts carry the
// CRCs that come from the row's CRCs by block (taken as the segment
// closed), not from a read of each part: a row whose block 9 (in part 2)
// does not match the file has that part refused by S3, the attempt fails
// verification, and the next one reads the file whole and uploads what it
// holds. (A part read for its CRC before it went would have gone up at the
// first attempt.)
func TestPartsCarryTheCRCsTakenAtClose(t *testing.T) {
	e := newEnv(t)
	const size, part = 40<<20 + 123, 8 << 20 // 6 parts
	data := mp4ish(size)
	rel, p := e.segmentPath("cam1", t0)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sums, err := filesum.File(p)
	if err != nil {
		t.Fatal(err)
	}
	sums.Blocks[9] ^= 1 // block 9: part 2's second block
	r, err := e.cat.Add(context.Background(), segment.Segment{Camera: "cam1", FeedID: "xx", Start: t0, End: t0.Add(10 * time.Second),
		Path: p, Size: size, SHA256: sums.SHA256, CRC64: sums.CRC64, CRC64Blocks: filesum.EncodeBlocks(sums.Blocks)}, Key("rec/2025", rel))
	if err != nil {
		t.Fatal(err)
	}
	run := e.run(Config{PartSize: part, PartConcurrency: 2, RetryInitial: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond}, e.clientC)
	run.await(t, 1, 2*time.Minute)
	st := run.u.Status()
	if st.VerifyFailures == 0 {
		t.Errorf("status %+v: the part with the wrong CRC went up at the first attempt (its CRC was not the block's)", st)
	}
	e.assertInBucket(r, data)
	got, _ := e.cat.Get(context.Background(), r.ID)
	if got.Upload != catalog.Uploaded || got.CRC64 != sums.CRC64 || len(got.CRC64Blocks) != 0 {
		t.Errorf("row %s, crc64 %q, %d bytes of blocks: want uploaded, the CRC taken again, the blocks forgotten", got.Upload, got.CRC64, len(got.CRC64Blocks))
	}
	if n := e.minio.MultipartUploads(bucket, r.Key); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
}
