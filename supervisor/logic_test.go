package supervisor

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/staging"
)

func TestProgressParser(t *testing.T) {
	// Two blocks as ffmpeg 5.1 writes them, the first with N/A values.
	input := `frame=1
fps=0.00
stream_0_0_q=20.0
bitrate=N/A
total_size=N/A
out_time_us=61
out_time_ms=61
out_time=00:00:00.000061
dup_frames=0
drop_frames=0
speed=0.00333x
progress=continue
frame=17
fps=2.20
bitrate=  28.8kbits/s
out_time_us=8000061
speed= 1.04x
dup_frames=3
drop_frames=40
progress=end`
	var p progressParser
	var blocks []Progress
	for _, l := range strings.Split(input, "\n") {
		if b, ok := p.line(l); ok {
			blocks = append(blocks, b)
		}
	}
	want := []Progress{
		{Frame: 1, FPS: 0, OutTime: 61 * time.Microsecond, Speed: 0.00333},
		{Frame: 17, FPS: 2.2, BitrateKbps: 28.8, OutTime: 8000061 * time.Microsecond, Speed: 1.04, DupFrames: 3, DropFrames: 40, End: true},
	}
	if !slices.Equal(blocks, want) {
		t.Errorf("blocks:\n got %+v\nwant %+v", blocks, want)
	}
}

func TestWatchdog(t *testing.T) {
	t0 := 1000 * time.Second // monotonic
	sec := func(n int) time.Duration { return t0 + time.Duration(n)*time.Second }
	type step struct {
		at       time.Duration
		frame    int64
		outTime  time.Duration
		advanced bool
	}
	tests := []struct {
		name      string
		steps     []step
		checkAt   time.Duration
		expired   bool
		wantUntil time.Duration
	}{
		{"no progress at all", nil, sec(15), true, sec(15)},
		{"no progress yet", nil, sec(14), false, sec(15)},
		{"zero frames do not count", []step{{sec(5), 0, 0, false}}, sec(15), true, sec(15)},
		{"frames advance", []step{{sec(5), 1, 0, true}, {sec(10), 20, 0, true}}, sec(24), false, sec(25)},
		{"frame count frozen", []step{{sec(5), 10, time.Second, true}, {sec(10), 10, time.Second, false}}, sec(20), true, sec(20)},
		{"out_time alone advances", []step{{sec(5), 10, time.Second, true}, {sec(10), 10, 2 * time.Second, true}}, sec(24), false, sec(25)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWatchdog(15*time.Second, t0)
			for i, s := range tt.steps {
				if got := w.observe(Progress{Frame: s.frame, OutTime: s.outTime}, s.at); got != s.advanced {
					t.Errorf("step %d advanced = %v, want %v", i, got, s.advanced)
				}
			}
			if got := w.expired(tt.checkAt); got != tt.expired {
				t.Errorf("expired(%v) = %v, want %v", tt.checkAt-t0, got, tt.expired)
			}
			if got := w.deadline(); got != tt.wantUntil {
				t.Errorf("deadline = %v, want %v", got-t0, tt.wantUntil-t0)
			}
		})
	}
}

func TestEpochEstimator(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	e := epochEstimator{window: 30 * time.Second}
	// Probing delays the first blocks by a second; then blocks arrive in real time.
	if got := e.add(ms(1500), ms(500)); got != ms(1000) {
		t.Errorf("first estimate = %v", got)
	}
	if got := e.add(ms(2000), ms(1500)); got != ms(500) {
		t.Errorf("second estimate = %v, want the earlier, smaller offset", got)
	}
	if got := e.add(ms(3000), ms(2400)); got != ms(500) {
		t.Errorf("a late block must not move the estimate: %v", got)
	}
	// A camera clock slower than ours: after the window, the old minimum
	// is forgotten and the estimate follows.
	if got := e.add(ms(40000), ms(39000)); got != ms(1000) {
		t.Errorf("estimate after the window = %v, want 1s", got)
	}
}

// TestEpochFollowsAClockStep: blocks arrive every second in real time; the
// wall clock steps back an hour, later forward 90 minutes. The wall-clock
// epoch moves with each step at the very next block, by the step's size,
// and by nothing else; the estimate itself (monotonic) does not move.
func TestEpochFollowsAClockStep(t *testing.T) {
	wall0 := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	e := epochEstimator{window: 30 * time.Second}
	var offset time.Duration // the wall clock's steps so far
	var want time.Time
	for i := 1; i <= 100; i++ {
		switch i {
		case 40:
			offset -= time.Hour
		case 70:
			offset += 90 * time.Minute
		}
		mono := 10*time.Second + time.Duration(i)*time.Second
		wall := wall0.Add(mono).Add(offset)
		got := wallEpoch(wall, mono, e.add(mono, time.Duration(i)*time.Second-200*time.Millisecond))
		want = wall0.Add(10*time.Second + 200*time.Millisecond).Add(offset)
		if !got.Equal(want) {
			t.Fatalf("block %d (clock stepped by %v): epoch %v, want %v", i, offset, got, want)
		}
	}
	if want.Sub(wall0) != 30*time.Minute+10200*time.Millisecond {
		t.Errorf("final epoch %v after the wall clock's net 30 min forward", want)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		cause  error
		code   int
		signal string
		tail   []string
		reason ExitReason
		msg    string
	}{
		{"operator stop", errStopped, 255, "", nil, ReasonStopped, "stopped by operator"},
		{"shutdown", errShutdown, 255, "", nil, ReasonStopped, "daemon shut down"},
		{"disk gone", ErrStorageUnavailable, 255, "", nil, ReasonStorage, "stopped: savePath's disk is not available"},
		{"stall", errStalled, -1, "killed", nil, ReasonStalled, "stalled: no new frames for 15s"},
		{"401", nil, 1, "", []string{"[rtsp @ 0x1] [error] method DESCRIBE failed: 401 Unauthorized", "[error] rtsp://a:***@h/x: Server returned 401 Unauthorized (authorization failed)"},
			ReasonAuth, "camera refused the credentials: rtsp://a:***@h/x: Server returned 401 Unauthorized (authorization failed)"},
		// The camera's own reason phrase: ffmpeg prints it as given.
		{"401 in the camera's words", nil, 1, "", []string{"[rtsp @ 0x1] [error] method DESCRIBE failed: 401 Authorization Required"},
			ReasonAuth, "camera refused the credentials: method DESCRIBE failed: 401 Authorization Required"},
		{"401 without a phrase", nil, 1, "", []string{"[rtsp @ 0x1] [error] method DESCRIBE failed: 401"}, ReasonAuth, "camera refused the credentials: method DESCRIBE failed: 401"},
		{"403 at SETUP", nil, 1, "", []string{"[rtsp @ 0x1] [error] method SETUP failed: 403 Forbidden", "[error] rtsp://h/x: Server returned 403 Forbidden (access denied)"},
			ReasonAuth, "camera refused the credentials: rtsp://h/x: Server returned 403 Forbidden (access denied)"},
		{"HTTP 401", nil, 1, "", []string{"[http @ 0x1] [error] HTTP error 401 Unauthorised"}, ReasonAuth, "camera refused the credentials: HTTP error 401 Unauthorised"},
		// A refusal is a failed login whatever follows it in the output.
		{"401, then a timeout", nil, 1, "", []string{"[error] rtsp://h/x: Server returned 401 Unauthorized (authorization failed)", "[tcp @ 0x2] [error] Connection timed out"},
			ReasonAuth, "camera refused the credentials: rtsp://h/x: Server returned 401 Unauthorized (authorization failed)"},
		{"401 in a size is not a refusal", nil, 1, "", []string{"[info] Stream #0:0: Video: h264, yuv420p, 401x401, 25 fps", "[error] Invalid data found when processing input"},
			ReasonExited, "ffmpeg exited with code 1: Invalid data found when processing input"},
		{"404", nil, 1, "", []string{"[error] rtsp://h/x: Server returned 404 Not Found"}, ReasonNotFound, "camera has no stream at this path: rtsp://h/x: Server returned 404 Not Found"},
		{"refused", nil, 1, "", []string{"[tcp @ 0x2] [error] Connection to tcp://127.0.0.1:9 failed: Connection refused"}, ReasonUnreachable, "camera unreachable: Connection to tcp://127.0.0.1:9 failed: Connection refused"},
		{"clean exit", nil, 0, "", []string{"[info] video:30kB"}, ReasonExited, "ffmpeg exited with code 0 (the camera ended the stream or stopped sending)"},
		{"error exit", nil, 8, "", []string{"[error] Invalid data found when processing input", "[info] x"}, ReasonExited, "ffmpeg exited with code 8: Invalid data found when processing input"},
		{"killed", nil, -1, "killed", nil, ReasonExited, "ffmpeg was killed by killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, msg := classify(tt.cause, tt.code, tt.signal, tt.tail, "15s")
			if reason != tt.reason || msg != tt.msg {
				t.Errorf("classify = %q, %q\nwant %q, %q", reason, msg, tt.reason, tt.msg)
			}
		})
	}
}

// TestProgressPeriod: ffmpeg reports a third of the stall timeout apart,
// at most half a segment and 5 s: a block that advances comes within two
// thirds of the timeout even at the slowest frame rate config allows (a
// frame every third of it), and a run's first segment waits at most half
// its length for the second block, which settles the epoch.
func TestProgressPeriod(t *testing.T) {
	for _, tt := range []struct{ stall, segment, want time.Duration }{
		{15 * time.Second, 600 * time.Second, 5 * time.Second}, // the defaults, the design note's segments
		{9 * time.Second, 300 * time.Second, 3 * time.Second},
		{time.Second, 10 * time.Second, 330 * time.Millisecond}, // the least timeout config allows
		{time.Minute, time.Hour, 5 * time.Second},
		{15 * time.Second, 4 * time.Second, 2 * time.Second}, // short segments
		{15 * time.Second, time.Second, 500 * time.Millisecond},
	} {
		got := ProgressPeriod(tt.stall, tt.segment)
		if got != tt.want {
			t.Errorf("ProgressPeriod(%v, %v) = %v, want %v", tt.stall, tt.segment, got, tt.want)
		}
		if worst := got + tt.stall/3; worst > tt.stall*2/3+10*time.Millisecond {
			t.Errorf("stall %v: an advancing block may be %v apart", tt.stall, worst)
		}
	}
}

func TestArgs(t *testing.T) {
	run := staging.Run{Dir: "/rec/.staging/cam1", ID: "R"}
	base := config.Camera{CameraName: "cam1", IPAddress: "10.0.0.2", UserName: "admin", Password: "p@ss",
		FrameRate: 2, Resolution: "1920x1080", VideoDuration: 600, VideoFeedID: "xx",
		RTSPPort: 554, RTSPPath: "/", RTSPTransport: "tcp"}
	tests := []struct {
		name   string
		mutate func(c *config.Camera)
		enc    Encoding
		want   []string // pairs that must appear next to each other
		absent []string
	}{
		{"design note camera", nil, Encoding{}, []string{
			"-rtsp_transport tcp", "-timeout 5000000", "-i rtsp://admin:p%40ss@10.0.0.2:554/",
			"-vf fps=2,scale=1920:1080", "-g 20", "-force_key_frames expr:gte(t,n_forced*600)",
			"-segment_time 600", "-segment_list /rec/.staging/cam1/R.csv", "-segment_list_type csv",
			"-progress pipe:1", "-map 0:v:0",
		}, []string{"-re", "-hwaccel"}},
		{"short segments: one keyframe per segment", func(c *config.Camera) { c.FrameRate, c.VideoDuration, c.Resolution = 5, 4, "1280x720" }, Encoding{},
			[]string{"-vf fps=5,scale=1280:720", "-g 20", "-segment_time 4", "-force_key_frames expr:gte(t,n_forced*4)"}, nil},
		{"fractional rate", func(c *config.Camera) { c.FrameRate = 2.5 }, Encoding{}, []string{"-vf fps=2.5,scale=1920:1080", "-g 25"}, nil},
		{"progress every 5 s", nil, Encoding{ProgressPeriod: 5 * time.Second}, []string{"-progress pipe:1", "-stats_period 5"}, []string{"-stats_period 1"}},
		{"progress every third of a second", nil, Encoding{ProgressPeriod: 330 * time.Millisecond}, []string{"-stats_period 0.33"}, nil},
		{"udp transport", func(c *config.Camera) { c.RTSPTransport = "udp" }, Encoding{}, []string{"-rtsp_transport udp"}, nil},
		{"looping file", func(c *config.Camera) { c.StreamURL = "file:///srv/loop.mp4" }, Encoding{},
			[]string{"-stream_loop -1", "-i /srv/loop.mp4"}, []string{"-rtsp_transport"}},
		{"copy: no decoding, cuts on the camera's keyframes", nil, Encoding{Copy: true, Codec: "h264"},
			[]string{"-c:v copy", "-segment_time 600"}, []string{"-vf", "-force_key_frames", "libx264", "-tag:v"}},
		{"copy of H.265 is tagged for players", nil, Encoding{Copy: true, Codec: "hevc"}, []string{"-c:v copy", "-tag:v hvc1"}, nil},
		{"vaapi", nil, Encoding{HWAccel: "vaapi", HWDevice: "/dev/dri/renderD128"},
			[]string{"-hwaccel vaapi", "-hwaccel_device /dev/dri/renderD128", "-vf fps=2,scale_vaapi=w=1920:h=1080:format=nv12", "-c:v h264_vaapi", "-bf 0"},
			[]string{"libx264"}},
		{"qsv", nil, Encoding{HWAccel: "qsv", HWDevice: "/dev/dri/renderD129"},
			[]string{"-hwaccel qsv", "-qsv_device /dev/dri/renderD129", "-vf fps=2,scale_qsv=w=1920:h=1080", "-c:v h264_qsv", "-forced_idr 1"}, nil},
		{"copy with activity: keyframes decoded on one thread, a second output to fd 3", nil, Encoding{Copy: true, Codec: "h264", Activity: true},
			[]string{"-skip_frame nokey", "-threads 1 -fpsprobesize 0 -i rtsp://admin:p%40ss@10.0.0.2:554/", "-c:v copy", "-segment_time 600",
				"/rec/.staging/cam1/R_%05d.mp4 -map 0:v:0 -vf scale=160:90:flags=area,format=yuv420p",
				"-fps_mode passthrough", "-c:v mjpeg", "-strict unofficial", "-f smjpeg", "-flush_packets 1 pipe:3"},
			[]string{"-filter_complex", "select"}},
		{"copy with activity of a 4:3 camera keeps the aspect", func(c *config.Camera) { c.Resolution = "640x480" }, Encoding{Copy: true, Activity: true},
			[]string{"-vf scale=160:120:flags=area,format=yuv420p"}, nil},
		{"transcode with activity: one decode, the graph split, 2 frames a second sampled", nil, Encoding{Activity: true},
			[]string{"-filter_complex [0:v:0]fps=2,scale=1920:1080,split=2[rec][act];[act]select='isnan(prev_selected_t)+gte(floor(t*2+0.001)-floor(prev_selected_t*2+0.001),1)',scale=160:90:flags=area,format=yuv420p[actv]",
				"-map [rec] -an -c:v libx264", "-force_key_frames expr:gte(t,n_forced*600)",
				"-map [actv] -an -fps_mode passthrough", "pipe:3"},
			[]string{"-vf", "-skip_frame", "-map 0:v:0"}},
		{"vaapi: no activity feed from GPU frames", nil, Encoding{HWAccel: "vaapi", HWDevice: "/dev/dri/renderD128", Activity: true},
			[]string{"-vf fps=2,scale_vaapi=w=1920:h=1080:format=nv12", "-map 0:v:0"}, []string{"pipe:3", "-filter_complex", "-skip_frame"}},
		{"nvenc", nil, Encoding{HWAccel: "nvenc"},
			[]string{"-hwaccel cuda", "-hwaccel_output_format cuda", "-vf fps=2,scale_cuda=1920:1080", "-c:v h264_nvenc", "-force_key_frames expr:gte(t,n_forced*600)"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cam := base
			if tt.mutate != nil {
				tt.mutate(&cam)
			}
			enc := tt.enc
			enc.Preset = "veryfast"
			args := Args(cam, run, enc)
			joined := " " + strings.Join(args, " ") + " "
			for _, w := range tt.want {
				if !strings.Contains(joined, " "+w+" ") {
					t.Errorf("args lack %q:\n%s", w, joined)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(joined, " "+a+" ") {
					t.Errorf("args hold %q", a)
				}
			}
			pattern := "/rec/.staging/cam1/R_%05d.mp4"
			if last := args[len(args)-1]; last != pattern && !(tt.enc.Activity && last == "pipe:3") {
				t.Errorf("last argument = %q", last)
			}
			if !slices.Contains(args, pattern) {
				t.Errorf("no segment output %q", pattern)
			}
		})
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := newLineWriter(8, func(s string) { got = append(got, s) })
	for _, chunk := range []string{"ab", "c\nde\r\n", "\n", "0123456789", "xy"} {
		w.Write([]byte(chunk))
	}
	w.flush()
	// A line is cut, never split: its tail is not a line of its own.
	want := []string{"abc", "de", "01234567"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

// TestLineWriterMasksBeforeCutting: a password longer than the line limit
// is masked whole before the line is cut, so no part of it is kept (the
// issue's reproduction let 2,027 of its characters through). A line with
// no end is cut at the hard limit without the beginning of a secret.
func TestLineWriterMasksBeforeCutting(t *testing.T) {
	password := strings.Repeat("Lq7", 1000) // 3000 characters
	u := url.URL{Scheme: "rtsp", User: url.UserPassword("admin", password), Host: "10.0.0.1:554", Path: "/x"}
	red := redact.New(password)
	var got []string
	w := newLineWriter(2048, func(s string) { got = append(got, s) }).masked(red)
	w.Write([]byte("[info] Input #0, rtsp, from '" + u.String() + "':\n"))
	w.Write([]byte("[error] " + strings.Repeat("x", 1000) + " " + password + " " + password + "\n"))
	// No line end for longer than the hard limit, a secret across it.
	long := strings.Repeat("y", lineHardMax-1500) + password + " tail"
	w.Write([]byte(long[:lineHardMax-100]))
	w.Write([]byte(long[lineHardMax-100:]))
	w.Write([]byte(" more of the same line\nnext line\n"))
	w.flush()
	if len(got) != 4 {
		t.Fatalf("%d lines, want 4: %q", len(got), got)
	}
	for _, l := range got {
		if strings.Contains(l, "Lq7L") || len(l) > 2048 {
			t.Errorf("line of %d bytes holds part of the password: %.120q", len(l), l)
		}
	}
	if got[0] != "[info] Input #0, rtsp, from 'rtsp://admin:***@10.0.0.1:554/x':" {
		t.Errorf("first line %q", got[0])
	}
	if got[3] != "next line" {
		t.Errorf("the rest of the overlong line was not dropped: %q", got[3])
	}
}

func TestCanCopy(t *testing.T) {
	cam := config.Camera{Resolution: "1280x720", FrameRate: 25}
	tests := []struct {
		info media.StreamInfo
		ok   bool
		why  string
	}{
		{media.StreamInfo{Codec: "h264", Width: 1280, Height: 720, FPS: 25}, true, ""},
		{media.StreamInfo{Codec: "hevc", Width: 1280, Height: 720, FPS: 15}, true, ""},
		{media.StreamInfo{Codec: "h264", Width: 1920, Height: 1080, FPS: 25}, false, "it is 1920x1080, not 1280x720"},
		{media.StreamInfo{Codec: "h264", Width: 1280, Height: 720, FPS: 30}, false, "its 30 fps is above the configured 25"},
		{media.StreamInfo{Codec: "mjpeg", Width: 1280, Height: 720, FPS: 25}, false, "its codec mjpeg is not H.264 or H.265"},
		{media.StreamInfo{Codec: "h264", Width: 1280, Height: 720, FPS: 0}, false, "its frame rate is unknown"},
	}
	for _, tt := range tests {
		ok, why := canCopy(cam, tt.info)
		if ok != tt.ok || why != tt.why {
			t.Errorf("canCopy(%v) = %v %q, want %v %q", tt.info, ok, why, tt.ok, tt.why)
		}
	}
	if r := media.Rate("30000/1001"); r < 29.97 || r > 29.98 {
		t.Errorf("rate = %v", r)
	}
}

func TestHWAccelFallsBackWhenMissing(t *testing.T) {
	if err := hwAvailable(context.Background(), "ffmpeg", "vaapi", "/nonexistent/renderD128"); err == nil || !strings.Contains(err.Error(), "no device") {
		t.Errorf("hwAvailable with no device = %v", err)
	}
}
