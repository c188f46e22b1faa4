package activity

import (
	"strings"
	"testing"
	"time"
)

func TestMetaRoundTrip(t *testing.T) {
	in := Summary{Score: 0.1234, Frames: 600, Intervals: []Interval{
		{Start: 1500 * time.Millisecond, End: 7 * time.Second, Peak: 3 * time.Second, Level: 0.0412},
		{Start: 61 * time.Second, End: 64250 * time.Millisecond, Peak: 62 * time.Second, Level: 0.013},
	}}
	in.Heatmap[0], in.Heatmap[17], in.Heatmap[255] = 1, 200, 255
	act, heat := FormatMeta(in)
	if want := "v1 s=0.123 n=600 i=1.5-7/3:0.041,61-64.25/62:0.013"; act != want {
		t.Errorf("activity = %q\nwant       %q", act, want)
	}
	if len(heat) != 342 {
		t.Errorf("heatmap value is %d bytes, want 342", len(heat))
	}
	out, err := ParseMeta(act, heat)
	if err != nil {
		t.Fatal(err)
	}
	if out.Score != 0.123 || out.Frames != 600 || len(out.Intervals) != 2 || out.Heatmap != in.Heatmap {
		t.Fatalf("parsed %+v", out)
	}
	if iv := out.Intervals[1]; iv.Start != 61*time.Second || iv.End != 64250*time.Millisecond || iv.Peak != 62*time.Second || iv.Level != 0.013 {
		t.Errorf("second interval %+v", iv)
	}
	if s, err := ParseMeta("v1 s=0 n=10", ""); err != nil || len(s.Intervals) != 0 || s.Frames != 10 {
		t.Errorf("no activity: %+v, %v", s, err)
	}
}

func TestMetaIsBounded(t *testing.T) {
	var in Summary
	for i := range 500 { // an interval every 1.2 s of a 10-minute segment
		st := time.Duration(i) * 1200 * time.Millisecond
		in.Intervals = append(in.Intervals, Interval{Start: st, End: st + 700*time.Millisecond, Peak: st + 100*time.Millisecond, Level: 0.123456})
	}
	in.Intervals[250].Level = 0.9
	act, _ := FormatMeta(in)
	if len(act) > MaxMetaLen {
		t.Fatalf("activity value is %d bytes, over %d", len(act), MaxMetaLen)
	}
	out, err := ParseMeta(act, "")
	if err != nil {
		t.Fatal(err)
	}
	// Merged, never lost: every interval lies inside one of the merged.
	for _, iv := range in.Intervals {
		found := false
		for _, m := range out.Intervals {
			if m.Start <= iv.Start && m.End >= iv.End-10*time.Millisecond {
				found = true
			}
		}
		if !found {
			t.Fatalf("interval %v is not covered by the merged ones %v", iv, out.Intervals)
		}
	}
	strongest := 0.0
	for _, m := range out.Intervals {
		strongest = max(strongest, m.Level)
	}
	if strongest != 0.9 {
		t.Errorf("the strongest peak after merging is %v, want 0.9", strongest)
	}
}

func TestParseMetaRefusesGarbage(t *testing.T) {
	for _, tt := range []struct{ act, heat string }{
		{"", ""},
		{"v2 s=0.1", ""},
		{"v1 s=2", ""},
		{"v1 s=x", ""},
		{"v1 i=1-2", ""},
		{"v1 i=3-2/2:0.1", ""},
		{"v1 i=1-2/1.5:7", ""},
		{"v1 i=-1-2/1:0.1", ""},
		{"v1 s=0.1", "short"},
		{"v1 s=0.1", strings.Repeat("A", 342) + "=="},
	} {
		if _, err := ParseMeta(tt.act, tt.heat); err == nil {
			t.Errorf("ParseMeta(%q, %q) took it", tt.act, tt.heat)
		}
	}
}
