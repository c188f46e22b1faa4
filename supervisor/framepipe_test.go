package supervisor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/fakeclock"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
)

// smjpeg writes an SMJPEG stream as ffmpeg's muxer does: header, header
// chunks, HEND, one vidD per frame (time in ms), DONE.
func smjpeg(frames []uint32, payload func(i int) []byte, done bool) []byte {
	var b bytes.Buffer
	b.WriteString("\x00\nSMJPEG")
	b.Write(make([]byte, 8)) // version, duration
	chunk := func(tag string, data []byte) {
		b.WriteString(tag)
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.Write(data)
	}
	chunk("_TXT", []byte("encoder = Lavf59.27.100"))
	chunk("_VID", []byte("\x00\x00\x00\x00\x00\xa0\x00\x5aJFIF"))
	b.WriteString("HEND")
	for i, ms := range frames {
		b.WriteString("vidD")
		binary.Write(&b, binary.BigEndian, ms)
		p := payload(i)
		binary.Write(&b, binary.BigEndian, uint32(len(p)))
		b.Write(p)
	}
	if done {
		b.WriteString("DONE")
	}
	return b.Bytes()
}

func TestReadSMJPEG(t *testing.T) {
	frame := func(i int) []byte { return []byte(fmt.Sprintf("jpeg-%d", i)) }
	good := smjpeg([]uint32{0, 1000, 2000}, frame, true)
	for _, tt := range []struct {
		name    string
		in      []byte
		pts     []time.Duration
		wantErr bool
	}{
		{"frames then DONE", good, []time.Duration{0, time.Second, 2 * time.Second}, false},
		{"cut after a frame (ffmpeg killed)", good[:len(good)-4], []time.Duration{0, time.Second, 2 * time.Second}, false},
		{"nothing written", nil, nil, false},
		{"a frame cut short", good[:len(good)-8], []time.Duration{0, time.Second}, true},
		{"not SMJPEG", slices.Concat([]byte("\x1aE\xdf\xa3"), good[4:]), nil, true},
		{"an unknown chunk", slices.Concat(good[:len(good)-4], []byte("junk")), []time.Duration{0, time.Second, 2 * time.Second}, true},
		{"a chunk claiming 1 GB", slices.Concat(good[:len(good)-4], []byte("vidD\x00\x00\x00\x00\x40\x00\x00\x00")), []time.Duration{0, time.Second, 2 * time.Second}, true},
		{"milliseconds wrapping at 2^32", smjpeg([]uint32{1<<32 - 1000, 500}, frame, true),
			[]time.Duration{(1<<32 - 1000) * time.Millisecond, (1<<32 + 500) * time.Millisecond}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			var data []string
			err := readSMJPEG(bytes.NewReader(tt.in), func(pts time.Duration, jpeg []byte) {
				got = append(got, pts)
				data = append(data, string(jpeg))
			})
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errFeed)) {
				t.Errorf("err = %v, want error %t", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.pts) {
				t.Errorf("times %v, want %v", got, tt.pts)
			}
			for i, d := range data {
				if d != string(frame(i)) {
					t.Errorf("frame %d = %q", i, d)
				}
			}
		})
	}
}

func TestFeedFailed(t *testing.T) {
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"[smjpeg @ 0x55] [error] unsupported video codec", true},
		{"[error] Could not write header for output file #1 (incorrect codec parameters ?): Invalid argument", true},
		{"[error] pipe:3: Bad file descriptor", true},
		{"[error] Error initializing output stream 1:0 -- Error while opening encoder", true},
		{"[warning] pipe:3: slow", false},
		{"[error] rtsp://...: 401 Unauthorized", false},
		{"[error] Error initializing output stream 0:0", false},
	} {
		if got := feedFailed([]string{tt.line}); got != tt.want {
			t.Errorf("feedFailed(%q) = %t, want %t", tt.line, got, tt.want)
		}
	}
}

// feedFake is a second stand-in ffmpeg, for the activity feed: run through
// a link of this name, it writes its arguments to args-N beside it, then
// does what its script says (one word per start, the last repeating):
//
//	feed N    progress, N frames on fd 3 (SMJPEG) as fast as it can, then
//	          progress until SIGINT
//	feedfail  with fd 3 in its arguments, fails as ffmpeg does when the
//	          feed's output cannot be made; without, records until SIGINT
const feedFake = "fake-ffmpeg-feed"

func init() {
	if filepath.Base(os.Args[0]) == feedFake {
		os.Exit(fakeFeedFFmpeg(filepath.Dir(os.Args[0])))
	}
}

func fakeFeedFFmpeg(dir string) int {
	script := strings.Split(strings.TrimSpace(readOr(filepath.Join(dir, "script"), "")), ",")
	n := 0
	for ; ; n++ {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("args-%d", n))); err != nil {
			break
		}
	}
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("args-%d", n)), []byte(strings.Join(os.Args[1:], "\n")), 0o644)
	mode := strings.Fields(script[min(n, len(script)-1)])
	hasFeed := slices.Contains(os.Args, "pipe:3")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	record := func() int {
		for i := 1; ; i++ {
			fmt.Printf("frame=%d\nout_time_us=%d\nprogress=continue\n", i, i*500000)
			select {
			case <-sigs:
				return 255
			case <-time.After(20 * time.Millisecond): // pacing the stand-in stream
			}
		}
	}
	switch {
	case mode[0] == "feedfail" && hasFeed:
		fmt.Fprintln(os.Stderr, "[smjpeg @ 0x55] [error] unsupported video codec")
		fmt.Fprintln(os.Stderr, "[error] Could not write header for output file #1 (incorrect codec parameters ?): Invalid argument")
		return 1
	case mode[0] == "feed" && hasFeed:
		var count int
		fmt.Sscan(mode[1], &count)
		fmt.Printf("frame=1\nout_time_us=500000\nprogress=continue\n")
		times := make([]uint32, count)
		for i := range times {
			times[i] = uint32(i * 1000)
		}
		feed := os.NewFile(3, "feed")
		// Frames of 4 KiB: together far more than any pipe buffer.
		feed.Write(smjpeg(times, func(int) []byte { return make([]byte, 4096) }, false))
	}
	return record()
}

// feedHarness runs one camera over the feed stand-in, with frames going
// to frames (nil: the daemon takes no feed).
func feedHarness(t *testing.T, script string, frames func(Frame), camTweak func(*config.Camera)) (*harness, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, feedFake)
	if err := os.Symlink(self, fake); err != nil {
		t.Fatal(err)
	}
	clock, waits := fakeclock.New(time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC), 1000)
	h := &harness{t: t, clock: clock, waits: waits, events: make(chan Event, 1000), logs: &testenv.Buffer{}, dir: dir, done: make(chan error, 1)}
	cam := config.Camera{CameraName: "cam1", IPAddress: "127.0.0.1", FrameRate: 2, Resolution: "640x360", VideoDuration: 4,
		VideoFeedID: "xx", RTSPPort: 1, RTSPPath: "/cam", RTSPTransport: "tcp", Mode: config.ModeCopy}
	if camTweak != nil {
		camTweak(&cam)
	}
	h.sup = New(Config{SavePath: dir, Owner: "test", FFmpegPath: fake, StallTimeout: time.Hour, StopTimeout: 2 * time.Second},
		[]config.Camera{cam}, nil, Deps{Log: zerolog.New(h.logs), Redactor: redact.New(), Now: clock.Now, Mono: clock.Mono,
			After: clock.After, OnEvent: func(ev Event) { h.events <- ev }, Frames: frames})
	h.cam, _ = h.sup.Camera("cam1")
	h.run()
	t.Cleanup(h.stop)
	return h, dir
}

func argsOf(t *testing.T, dir string, n int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("args-%d", n)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

// A receiver that cannot keep up (the analysis is not running at all)
// costs frames, counted, never the recording: ffmpeg writes far more than
// the pipe holds, and goes on recording; the run's end still arrives.
func TestActivityFeedNeverHoldsFFmpeg(t *testing.T) {
	svc := activity.NewService(activity.Config{Queue: 16}, activity.Deps{Log: zerolog.Nop()}) // never Run: nothing is analysed
	var mu sync.Mutex
	var runs []string
	var ends int
	var last time.Duration
	all := make(chan struct{})
	h, dir := feedHarness(t, "feed 600", func(f Frame) {
		if f.PTS == 599*time.Second {
			close(all)
		}
		mu.Lock()
		if f.End {
			ends++
		} else {
			if !slices.Contains(runs, f.Run) {
				runs = append(runs, f.Run)
			}
			if f.PTS < last {
				t.Errorf("frame times go back: %v after %v", f.PTS, last)
			}
			last = f.PTS
		}
		mu.Unlock()
		svc.Offer(activity.Input{Camera: f.Camera, Run: f.Run, PTS: f.PTS, JPEG: f.JPEG, End: f.End})
	}, nil)
	h.event(EventRecording)
	await.Recv(t, all, 20*time.Second, "last of 600 frames (2.4 MB, more than the pipe holds) read while the receiver drops")
	if err := h.sup.Stop(ctxT(t), "cam1"); err != nil {
		t.Fatal(err)
	}
	st := svc.Status()
	mu.Lock()
	defer mu.Unlock()
	if ends != 1 || len(runs) != 1 {
		t.Errorf("%d ends for %d runs %v, want one each", ends, len(runs), runs)
	}
	if st.Dropped != 600-16 || last != 599*time.Second {
		t.Errorf("dropped %d of 600 frames (want %d: the queue holds 16), the last at %v", st.Dropped, 600-16, last)
	}
	if args := argsOf(t, dir, 0); !slices.Contains(args, "pipe:3") || !slices.Contains(args, "-skip_frame") {
		t.Errorf("a copy run with the feed lacks its arguments: %v", args)
	}
}

// An ffmpeg that fails on the feed's output costs one run: the camera
// records without the feed from then on, and says so.
func TestActivityFeedFailureFallsBackToRecording(t *testing.T) {
	h, dir := feedHarness(t, "feedfail", func(Frame) {}, nil)
	h.event(EventExited)
	h.pauses(1)
	h.event(EventRecording)
	if !slices.Contains(argsOf(t, dir, 0), "pipe:3") {
		t.Fatal("the first run had no feed")
	}
	if args := argsOf(t, dir, 1); slices.Contains(args, "pipe:3") || slices.Contains(args, "-skip_frame") {
		t.Errorf("the run after the feed failed still makes it: %v", args)
	}
	if !strings.Contains(h.logs.String(), "records without activity analysis from now on") {
		t.Errorf("the fallback is not logged:\n%s", h.logs.String())
	}
}

func TestActivityOffMakesNoFeed(t *testing.T) {
	off := false
	for _, tt := range []struct {
		name   string
		frames func(Frame)
		tweak  func(*config.Camera)
	}{
		{"activity: false", func(Frame) {}, func(c *config.Camera) { c.Activity = &off }},
		{"no receiver", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, dir := feedHarness(t, "feed 3", tt.frames, tt.tweak)
			h.event(EventRecording)
			if args := argsOf(t, dir, 0); slices.Contains(args, "pipe:3") || slices.Contains(args, "-skip_frame") {
				t.Errorf("activity off, yet the feed is made: %v", args)
			}
		})
	}
}
