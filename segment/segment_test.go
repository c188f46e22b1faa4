package segment

import (
	"errors"
	"testing"
	"time"
)

func TestName(t *testing.T) {
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		camera     string
		feed       string
		start, end time.Time
		seq        int
		want       string
	}{
		{"design note", "camera1", "xx", start, start.Add(10 * time.Minute), 0, "camera1_xx_20260106T120000Z_20260106T121000Z.mp4"},
		{"rounds to the nearest second", "cam", "f", start.Add(499 * time.Millisecond), start.Add(6500 * time.Millisecond), 0, "cam_f_20260106T120000Z_20260106T120007Z.mp4"},
		{"written in UTC", "cam", "f", start.In(time.FixedZone("CET", 3600)), start.Add(time.Second), 0, "cam_f_20260106T120000Z_20260106T120001Z.mp4"},
		{"collision suffix", "cam", "f", start, start, 2, "cam_f_20260106T120000Z_20260106T120000Z-2.mp4"},
		{"feed with underscore", "cam", "a_b", start, start, 0, "cam_a_b_20260106T120000Z_20260106T120000Z.mp4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Name(tt.camera, tt.feed, tt.start, tt.end, tt.seq); got != tt.want {
				t.Errorf("Name = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want Info
		err  bool
	}{
		{in: "camera1_xx_20260106T120000Z_20260106T121000Z.mp4", want: Info{"camera1", "xx", start, start.Add(10 * time.Minute), 0, ""}},
		{in: "cam.2-b_feed_id_20260106T120000Z_20260106T120000Z-3.mp4", want: Info{"cam.2-b", "feed_id", start, start, 3, ""}},
		{in: "cam_f_20260106T120000Z_20260106T120000Z.conflict-0123456789ab.mp4", want: Info{"cam", "f", start, start, 0, "0123456789ab"}},
		{in: "cam_f_20260106T120000Z_20260106T120000Z-2.conflict-0123456789ab.mp4", want: Info{"cam", "f", start, start, 2, "0123456789ab"}},
		{in: "cam_f_20260106T120000Z_20260106T120000Z.conflict-0123456789AB.mp4", err: true}, // hex is lower case
		{in: "cam_f_20260106T120000Z_20260106T120000Z.conflict-0123.mp4", err: true},         // 12 digits
		{in: "cam_f_20260106T120000Z_20260106T120000Z", err: true},                           // no extension
		{in: "cam_f_20260106T120010Z_20260106T120000Z.mp4", err: true},                       // ends before it starts
		{in: "cam_20260106T120000Z_20260106T120000Z.mp4", err: true},                         // no feed id
		{in: "cam_f_20261306T120000Z_20261306T120000Z.mp4", err: true},                       // month 13
		{in: "../x_f_20260106T120000Z_20260106T120000Z.mp4", err: true},                      // path
		{in: "cam_f_20260106T120000Z_20260106T120000Z-0.mp4", err: true},                     // suffix starts at 1
		{in: "catalog.db", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err {
				if !errors.Is(err, ErrNotSegment) {
					t.Fatalf("Parse = %+v, %v; want ErrNotSegment", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if got.Name() != tt.in {
				t.Errorf("round trip = %q", got.Name())
			}
		})
	}
}

// FuzzParse checks that any name Parse accepts is canonical: writing back
// what it parsed gives the same name, so names and their parts never drift.
func FuzzParse(f *testing.F) {
	f.Add("camera1_xx_20260106T120000Z_20260106T121000Z.mp4")
	f.Add("cam.2-b_feed_id_20260106T120000Z_20260106T120000Z-3.mp4")
	f.Add("a_b_c_20000101T000000Z_20991231T235959Z.mp4")
	f.Add("x_y_20260106T120000Z_20260106T120000Z-999999999.mp4")
	f.Add("x_y_20260106T120000Z_20260106T120000Z.conflict-00ff00ff00ff.mp4")
	f.Fuzz(func(t *testing.T, name string) {
		info, err := Parse(name)
		if err != nil {
			return
		}
		if info.End.Before(info.Start) {
			t.Fatalf("%q: end before start", name)
		}
		if got := info.Name(); got != name {
			t.Fatalf("Parse(%q).Name() = %q", name, got)
		}
	})
}

func TestConflictName(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for in, want := range map[string]string{
		"cam_f_20260106T120000Z_20260106T120000Z.mp4":                    "cam_f_20260106T120000Z_20260106T120000Z.conflict-0123456789ab.mp4",
		"rec/cam/2026-01-06/cam_f_20260106T120000Z_20260106T120000Z.mp4": "rec/cam/2026-01-06/cam_f_20260106T120000Z_20260106T120000Z.conflict-0123456789ab.mp4",
	} {
		if got := ConflictName(in, sha); got != want {
			t.Errorf("ConflictName(%q) = %q, want %q", in, got, want)
		}
	}
}
