package catalog

import (
	"context"
	"os"
	"testing"
)

// TestReturnedFileForgetsTheOldObject: a row went up beside different
// content (under a conflict key) and its file was cleared; a file with
// other footage is back under its name. The row now describes that file:
// it goes back to the key it belongs under, with nothing of the old
// object (conflict key, ETag, how it was verified), so that the uploader
// looks at S3 afresh instead of comparing the new file with the old
// object's conflict key.
func TestReturnedFileForgetsTheOldObject(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	seg := writeSegment(t, save, "cam1", t0, 100)
	r, err := c.Add(ctx, seg, "rec/a.mp4")
	if err != nil {
		t.Fatal(err)
	}
	c.SetChecksums(ctx, r.ID, fileSHA256(seg.Path), "bb")
	c.SetConflict(ctx, r.ID, "rec/a.conflict-0123456789ab.mp4")
	c.MarkUploaded(ctx, r.ID, `"e"`, "checksum-sha256")
	c.MarkLocalDeleted(ctx, r.ID, CauseClearAfterUpload)
	if err := os.WriteFile(seg.Path, make([]byte, 300), 0o644); err != nil { // other footage, same name
		t.Fatal(err)
	}
	if res, err := c.Reconcile(ctx, key); err != nil || res.Returned != 1 {
		t.Fatalf("reconcile = %+v, %v", res, err)
	}
	back, _ := c.Get(ctx, r.ID)
	if back.Upload != Pending || !back.VerifyRemote || back.Key != "rec/a.mp4" || back.ConflictKey != "" ||
		back.ETag != "" || back.Verified != "" || !back.UploadedAt.IsZero() {
		t.Errorf("returned row: key %q, conflict key %q, etag %q, verified %q, uploaded at %v, %s; want pending under rec/a.mp4 with nothing of the old object",
			back.Key, back.ConflictKey, back.ETag, back.Verified, back.UploadedAt, back.Upload)
	}
}
