package snapshot

import (
	"strings"
	"testing"

	"github.com/cctvd/cctvd/internal/media"
)

func TestArgs(t *testing.T) {
	got := strings.Join(media.StillArgs("/rec/a.mp4", 960), " ")
	want := "-hide_banner -nostdin -loglevel error -sseof -1 -i /rec/a.mp4 -map 0:v:0 -frames:v 1 -vf scale=w='min(iw,960)':h=-2 -c:v mjpeg -q:v 5 -f image2pipe -"
	if got != want {
		t.Errorf("args\n%s\nwant\n%s", got, want)
	}
}
