package catalog

import (
	"context"
	"testing"
	"time"
)

// TestRetentionMainBeforeSubIsPerCamera: "retention deletes a camera's
// main footage before its sub footage" (docs/upload.md). A camera without
// a sub feed has no other copy of its footage: with nothing uploaded (the
// uplink down for days, S3 refusing the credentials), its newest segment
// must not go while another camera's sub copy of a week ago stays. Today
// every camera's main rows go before any sub row, so the sub feeds, never
// deleted while a main row exists, grow without bound: after
// limit / (the sub feeds' rate) the main feeds and every camera without a
// sub keep almost no history.
func TestRetentionMainBeforeSubIsPerCamera(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	// cam1 has a sub feed: a week-old sub segment, its main copy gone.
	oldSub, err := c.Add(ctx, writeFeedSegment(t, save, "cam1", t0.Add(-7*24*time.Hour), 10), key("s"))
	if err != nil {
		t.Fatal(err)
	}
	// cam2 has none: one segment, recorded an hour ago, its only copy.
	recent, err := c.Add(ctx, writeSegment(t, save, "cam2", t0.Add(-time.Hour), 100), key("m"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.RetentionCandidates(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID == recent.ID {
		t.Errorf("retention deletes cam2's only copy of an hour ago (row %d) before cam1's sub copy of a week ago (row %d): first candidates %v",
			recent.ID, oldSub.ID, ids(got))
	}
}
