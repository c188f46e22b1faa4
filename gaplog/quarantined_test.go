package gaplog

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
)

// TestQuarantinedDeletionIsNoSecondGap: a damaged copy quarantined before
// S3 had it is a corrupt gap from then on; when retention later deletes
// it (the quarantine over its bound), the interval is not a second gap.
// A recording S3 lacked, deleted, still is one.
func TestQuarantinedDeletionIsNoSecondGap(t *testing.T) {
	cat := openCatalog(t)
	l := New(Deps{Log: zerolog.Nop(), Catalog: cat})
	if err := l.Start(context.Background(), []string{"cam"}); err != nil {
		t.Fatal(err)
	}
	l.CameraEvent(supervisor.Event{Camera: "cam", Kind: supervisor.EventStarted, RunID: "a"})
	l.Segment(segment.Segment{Camera: "cam", Start: at(0), End: at(10), Run: "a"})
	l.Segment(segment.Segment{Camera: "cam", Start: at(10), End: at(20), Run: "a"})
	l.Segment(segment.Segment{Camera: "cam", Start: at(20), End: at(30), Run: "a"})
	bad := catalog.Record{Camera: "cam", Start: at(0), End: at(10), Path: "/x/.quarantine/cam/cam_x.mp4", Upload: catalog.Pending}
	l.Corrupt(bad, "the file is empty")
	bad.Local = catalog.Quarantined
	l.Deleted(bad, "retention-quarantine-limit")
	l.Deleted(catalog.Record{Camera: "cam", Start: at(10), End: at(20), Upload: catalog.Pending, Local: catalog.Present}, catalog.CauseSizeLimit)
	gaps, _ := l.Gaps(context.Background(), "cam", at(-1), at(40))
	var causes []string
	for _, g := range gaps {
		causes = append(causes, g.Cause)
	}
	if len(causes) != 2 || causes[0] != CauseCorrupt || causes[1] != CauseRetention {
		t.Errorf("gaps %v, want one corrupt (the quarantined copy) and one retention (the recording)", causes)
	}
}
