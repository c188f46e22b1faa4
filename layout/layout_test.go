package layout

import (
	"testing"
	"time"
)

func TestDayRelUsesUTCDay(t *testing.T) {
	// 23:30 on the 5th in UTC-5 is 04:30 on the 6th in UTC.
	start := time.Date(2026, 1, 5, 23, 30, 0, 0, time.FixedZone("EST", -5*3600))
	if got := DayRel("camera1", start); got != "camera1/2026-01-06" {
		t.Errorf("DayRel = %q", got)
	}
}

// TestPaths pins the layout that boxes in the field hold: v0.1.0's
// savePath and state folder must keep working as they are.
func TestPaths(t *testing.T) {
	start := time.Date(2026, 1, 6, 23, 59, 59, 600e6, time.UTC) // rounds into the 7th
	at := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ got, want string }{
		{Staging("/rec"), "/rec/.staging"},
		{StagingDir("/rec", "door"), "/rec/.staging/door"},
		{FeedStagingDir("/rec", "door", ""), "/rec/.staging/door"},
		{FeedStagingDir("/rec", "door", "main"), "/rec/.staging/door"},
		{FeedStagingDir("/rec", "door", "sub"), "/rec/.staging/door~sub"},
		{Quarantine("/rec"), "/rec/.quarantine"},
		{QuarantineRel("door"), ".quarantine/door"},
		{QuarantineDir("/rec", "door"), "/rec/.quarantine/door"},
		{Marker("/rec"), "/rec/.cctvd-volume"},
		{DefaultStateDir("/rec"), "/rec/.cctvd"},
		{Catalog("/var/lib/cctvd"), "/var/lib/cctvd/catalog.db"},
		{Reserve("/var/lib/cctvd/catalog.db"), "/var/lib/cctvd/catalog.reserve"},
		{Lock("/var/lib/cctvd"), "/var/lib/cctvd/lock"},
		{Desired("/var/lib/cctvd"), "/var/lib/cctvd/cameras.json"},
		{Aside("/s/catalog.db", "corrupt", at), "/s/catalog.db.corrupt-20260106T120000.000Z"},
		{DayRel("door", start), "door/2026-01-07"},
		{DayDir("/rec", "door", start), "/rec/door/2026-01-07"},
		{SegmentRel("door", start, "x.mp4"), "door/2026-01-07/x.mp4"},
		{SegmentPath("/rec", "door", start, "x.mp4"), "/rec/door/2026-01-07/x.mp4"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for name, want := range map[string][2]string{"door": {"door", ""}, "door~sub": {"door", "sub"}, "cam.2~sub": {"cam.2", "sub"}} {
		if c, f := StagingFeed(name); c != want[0] || f != want[1] {
			t.Errorf("StagingFeed(%q) = %q, %q", name, c, f)
		}
	}
	for name, want := range map[string]bool{"door~sub": false, "door": true, "cam.2": true, ".staging": false, ".quarantine": false, ".cctvd": false} {
		if got := IsCameraDir(name); got != want {
			t.Errorf("IsCameraDir(%q) = %v", name, got)
		}
	}
}
