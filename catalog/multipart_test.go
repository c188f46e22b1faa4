package catalog

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestMultipartRecordsRoundTrip: a multipart upload's record and its parts
// are kept, a part sent anew replaces its record, and ending the upload
// forgets it all and clears the row's upload id.
func TestMultipartRecordsRoundTrip(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	r, err := c.Add(ctx, writeSegment(t, save, "cam1", t0, 100), "rec/a.mp4")
	if err != nil {
		t.Fatal(err)
	}
	m := Multipart{SegmentID: r.ID, UploadID: "up-1", Key: r.Key, Bucket: "b", PartSize: 5 << 20, FileSize: 12 << 20,
		MTime: t0.Add(time.Minute), SHA256: "sha", CRC64: "crc", PartCRCs: []string{"p1", "p2", "p3"}, ETag: "etag-3"}
	if err := c.StartMultipart(ctx, m); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Part{{Number: 2, Size: 5 << 20, CRC64: "p2", ETag: `"e2"`}, {Number: 1, Size: 5 << 20, CRC64: "p1", ETag: `"e1"`},
		{Number: 2, Size: 5 << 20, CRC64: "p2", ETag: `"e2b"`}} {
		if err := c.AddPart(ctx, r.ID, p); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := c.MultipartOf(ctx, r.ID)
	if err != nil || !ok {
		t.Fatalf("record: %v %v", ok, err)
	}
	wantParts := []Part{{1, 5 << 20, "p1", `"e1"`}, {2, 5 << 20, "p2", `"e2b"`}}
	if got.UploadID != "up-1" || got.PartSize != 5<<20 || !got.MTime.Equal(m.MTime) || !reflect.DeepEqual(got.PartCRCs, m.PartCRCs) ||
		!reflect.DeepEqual(got.Parts, wantParts) || got.Created.IsZero() {
		t.Errorf("record = %+v", got)
	}
	if row, _ := c.Get(ctx, r.ID); row.UploadID != "up-1" {
		t.Errorf("the row's upload id: %q", row.UploadID)
	}
	// A new upload of the segment replaces the record and its parts.
	m.UploadID = "up-2"
	if err := c.StartMultipart(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := c.MultipartOf(ctx, r.ID); got.UploadID != "up-2" || len(got.Parts) != 0 {
		t.Errorf("after a new start: %+v", got)
	}
	if all, err := c.Multiparts(ctx); err != nil || len(all) != 1 {
		t.Errorf("all records: %+v %v", all, err)
	}
	if err := c.EndMultipart(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.MultipartOf(ctx, r.ID); ok {
		t.Error("a record after the end")
	}
	if row, _ := c.Get(ctx, r.ID); row.UploadID != "" {
		t.Errorf("the row's upload id after the end: %q", row.UploadID)
	}
}

// TestUpgradeToResumableUploadsKeepsEveryRow: a catalog of the schema
// before resume records (10 migrations) opens with every row as it was,
// its interrupted upload's id included.
func TestUpgradeToResumableUploadsKeepsEveryRow(t *testing.T) {
	save := t.TempDir()
	path := oldCatalog(t, save, 10,
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, upload_id, bucket, created_ns)
			VALUES ('cam1', 'xx', 1, 2, 'cam1/2026-01-06/a.mp4', 10, 'uploading', 'rec/a.mp4', 'old-upload', '', 1)`,
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, etag, bucket, created_ns)
			VALUES ('cam1', 'xx', 2, 3, 'cam1/2026-01-06/b.mp4', 20, 'uploaded', 'rec/b.mp4', '"e"', 'bkt', 1)`)
	c, err := Open(context.Background(), path, save, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.many(context.Background(), `ORDER BY id`)
	if err != nil || len(rows) != 2 || rows[0].UploadID != "old-upload" || rows[0].Upload != Uploading || rows[1].ETag != `"e"` || rows[1].Bucket != "bkt" {
		t.Fatalf("rows after the upgrade: %+v %v", rows, err)
	}
	if all, err := c.Multiparts(context.Background()); err != nil || len(all) != 0 {
		t.Errorf("records after the upgrade: %+v %v", all, err)
	}
	prod, err := c.Produced(context.Background(), time.Unix(0, 0))
	if err != nil || len(prod) != 1 || prod[0].Bytes != 30 || prod[0].Seconds != 2e-9 {
		t.Errorf("produced: %+v %v", prod, err)
	}
}
