package bench

import (
	"strings"
	"testing"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/supervisor"
)

// TestTranscodeLine: a candidate is cctvd's own line, read once from the
// clip (no -re, no loop, no progress), with only the candidate's changes.
func TestTranscodeLine(t *testing.T) {
	cam := config.Camera{CameraName: "t", StreamURL: "file:///w/src.mp4", FrameRate: 2, Resolution: "1920x1080", VideoDuration: 10, VideoFeedID: "b", RTSPTransport: "tcp"}
	for _, tt := range []struct {
		c            candidate
		want, absent []string
	}{
		{candidates[0], []string{"-i /w/src.mp4", "-vf fps=2,scale=1920:1080", "-preset veryfast", "-tune zerolatency", "-f mp4", "-y /w/out.mp4"},
			[]string{"-re", "-stream_loop", "-progress", "-threads", "segment"}},
		{candidates[7], []string{"-threads 1 -i /w/src.mp4", "-preset ultrafast", "-threads 1 -f mp4"}, nil},
		{candidates[8], []string{"-preset ultrafast"}, []string{"-tune"}},
		{candidates[9], []string{"-vf scale=1920:1080,fps=2"}, nil},
	} {
		line := " " + strings.Join(transcodeLine(cam, supervisor.Encoding{Preset: tt.c.preset}, tt.c, "/w/src.mp4", "/w/out.mp4"), " ") + " "
		for _, w := range tt.want {
			if !strings.Contains(line, " "+w+" ") {
				t.Errorf("%s: lacks %q:%s", tt.c.name, w, line)
			}
		}
		for _, a := range tt.absent {
			if strings.Contains(line, " "+a+" ") {
				t.Errorf("%s: holds %q:%s", tt.c.name, a, line)
			}
		}
	}
	copyLine := " " + strings.Join(transcodeLine(cam, supervisor.Encoding{Copy: true}, candidate{}, "/w/src.mp4", "/w/out.mp4"), " ") + " "
	if !strings.Contains(copyLine, " -c:v copy ") || strings.Contains(copyLine, "libx264") {
		t.Errorf("copy line: %s", copyLine)
	}
}
