//go:build integration

package export

import (
	"context"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/testenv"
)

// A clip cut to windows plays each window's footage, one after the
// other: two windows in one segment (read through two descriptors), one
// in another; the manifest says what was cut, and the time between the
// windows is no gap.
func TestClipCutToWindows(t *testing.T) {
	b := newBox(t)
	s0, s2 := fx.recs[0].start, fx.recs[2].start
	from, to := s0, fx.recs[2].end
	ws := []Range{
		{From: s0.Add(500 * time.Millisecond), To: s0.Add(1500 * time.Millisecond)},  // in the first GOP: its keyframe hidden by the edit list
		{From: s0.Add(2500 * time.Millisecond), To: s0.Add(3500 * time.Millisecond)}, // the same segment: from its keyframe at 2 s
		{From: s2.Add(time.Second), To: s2.Add(3 * time.Second)},                     // the third: from its keyframe at 0
	}
	cut := &ManifestWindows{By: CutActivity, PadSeconds: 0, Windows: ws, Note: NoteActivity}
	clip, err := builder().Build(context.Background(), Request{Camera: "door", From: from, To: to, Segments: b.segs, Made: MadeOnBox,
		Windows: ws, Cut: cut})
	if err != nil {
		t.Fatal(err)
	}
	defer clip.Close()
	path, m := save(t, clip)
	p := testenv.ProbeClip(t, path)
	// 1 s (edit list), then 1.5 s (from the keyframe at 2 s), then 3 s.
	want := 5500 * time.Millisecond
	if (p.Duration - want).Abs() > 2*frame {
		t.Errorf("the cut clip plays %v, want %v", p.Duration, want)
	}
	if frames := int(want / frame); p.Frames < frames-2 || p.Frames > frames+12 {
		t.Errorf("%d frames decoded, want about %d", p.Frames, frames)
	}
	if m.Windows == nil || len(m.Windows.Windows) != 3 || m.Windows.By != CutActivity {
		t.Errorf("the manifest does not say it was cut: %+v", m.Windows)
	}
	if len(m.Sources) != 3 || m.Sources[0].Name != m.Sources[1].Name || m.Sources[1].Name == m.Sources[2].Name {
		t.Fatalf("sources %+v, want the first segment twice, then the third", m.Sources)
	}
	for i, src := range m.Sources[1:] { // from the keyframe at or before the window
		w := ws[i+1]
		if src.Used.From.After(w.From) || !src.Used.From.After(w.From.Add(-gop)) || !src.Used.To.Equal(w.To) {
			t.Errorf("window %d (%v to %v) plays %v to %v: not from its keyframe (GOP %v) to its end", i+1, w.From, w.To, src.Used.From, src.Used.To, gop)
		}
	}
	if len(m.Gaps) != 0 {
		t.Errorf("the time between windows reported as gaps: %+v", m.Gaps)
	}
	if !m.Actual.From.Equal(ws[0].From) || !m.Actual.To.Equal(ws[2].To) || !m.Requested.From.Equal(from) {
		t.Errorf("actual %+v, requested %+v", m.Actual, m.Requested)
	}
}
