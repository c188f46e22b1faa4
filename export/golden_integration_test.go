//go:build integration

package export

import (
	"os"
	"testing"
	"time"
)

// TestGoldenClipsFromTheBucket: the same clips read from S3 objects
// (streamed, parsed as they arrive) give the recorded bytes too.
func TestGoldenClipsFromTheBucket(t *testing.T) {
	fixtures(t)
	segs := goldenRecordings(t)
	for i, s := range segs {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		put(t, s.Key, data, s.Start, s.End, s.SHA256)
		segs[i].Path, segs[i].Uploaded = "", true
	}
	b := builder()
	b.Now = func() time.Time { return t0 }
	got := map[string]string{}
	for _, r := range goldenRanges {
		got[r.name] = goldenClip(t, b, segs, r.from, r.to, MadeOnBox)
	}
	checkGolden(t, got)
}
