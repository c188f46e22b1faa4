package supervisor

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Frame is one picture of a camera's activity feed: the recording ffmpeg's
// own frames, small, as a JPEG with its stream time (see Encoding.Activity),
// or the end of a run's feed.
type Frame struct {
	Camera, Run string
	// PTS is the frame's stream time; Epoch the run's wall-clock time of
	// stream time 0 when it came (zero until known).
	PTS   time.Duration
	Epoch time.Time
	JPEG  []byte
	// End: the run's feed is over (ffmpeg exited); no frame follows.
	End bool
}

// framePipe carries the activity feed from ffmpeg (fd ActivityFD) to
// Deps.Frames. ffmpeg must never wait on it: the pipe's buffer is raised to
// pipeBuffer (about five minutes of frames), the reader hands each frame on
// without waiting (Frames must not block: the receiver drops and counts
// what it cannot take), and it reads to the end whatever happens, since a
// write error on the pipe would end ffmpeg's every output, the recording's
// too. A nil *framePipe (activity off) does nothing.
type framePipe struct {
	c     *Camera
	a     *attempt
	r, w  *os.File
	done  chan struct{}
	count atomic.Int64 // frames read
}

// pipeBuffer is the pipe's size asked of the kernel (its default, 64 KiB,
// holds about 20 frames); a system whose limit is lower keeps its default.
const pipeBuffer = 1 << 20

// maxChunk bounds one chunk of the feed: a frame of 160 pixels is a few KB.
const maxChunk = 4 << 20

// activityOff says, for a run, whether the activity feed is to be left
// out: the camera's config turns it off, the camera's other feed is the
// one analysed (config.Camera.AnalysesActivity: the sub feed when there
// is one), the daemon takes no frames, or an earlier run failed because
// of it (framesState.failed).
func (c *Camera) activityOff() bool {
	return c.deps.Frames == nil || !c.cfg.AnalysesActivity() || c.frames.failed
}

// framesState is what a camera remembers of its activity feed.
type framesState struct {
	// failed: a run with the feed ended before recording, and ffmpeg named
	// the feed's output: the camera records without it from then on (until
	// the daemon restarts or the camera's config changes).
	failed bool
}

// openFrames makes the activity feed's pipe for a run of enc; without one
// (activity off, or no pipe to be had) enc records without the feed.
func (c *Camera) openFrames(enc *Encoding, a *attempt) *framePipe {
	if !enc.Activity {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		enc.Activity = false
		a.log.Warn().Err(err).Msg("no pipe for the activity feed: recording without activity analysis this run")
		return nil
	}
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, pipeBuffer)
	return &framePipe{c: c, a: a, r: r, w: w, done: make(chan struct{})}
}

// attach passes the pipe's write end to ffmpeg as fd ActivityFD.
func (p *framePipe) attach(cmd *exec.Cmd) {
	if p != nil {
		cmd.ExtraFiles = []*os.File{p.w}
	}
}

// start reads the feed once ffmpeg runs (it holds the write end now).
func (p *framePipe) start() {
	if p == nil {
		return
	}
	p.w.Close()
	go p.read()
}

// abort releases the pipe of a run that did not start.
func (p *framePipe) abort() {
	if p != nil {
		p.w.Close()
		p.r.Close()
	}
}

// finish, after ffmpeg exited, waits for the feed's end, says so to the
// receiver, and remembers when the feed made ffmpeg fail.
func (p *framePipe) finish() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
	case <-time.After(2 * time.Second): // a child of ffmpeg holding the pipe
		p.r.Close()
		<-p.done
	}
	c, a := p.c, p.a
	c.deps.Frames(Frame{Camera: c.cfg.CameraName, Run: a.run.ID, End: true})
	c.mu.Lock()
	recorded := a.isRecording
	c.mu.Unlock()
	if !recorded && feedFailed(a.tail) {
		c.frames.failed = true
		a.log.Error().Msg("ffmpeg failed on the activity feed's output: this camera records without activity analysis from now on")
	}
}

// feedFailed says whether ffmpeg's last lines blame the activity feed's
// output (the second output, its encoder or muxer).
func feedFailed(tail []string) bool {
	for _, l := range tail {
		if ffmpegLevel(l) != levelError {
			continue
		}
		for _, s := range []string{fmt.Sprintf("pipe:%d", ActivityFD), "smjpeg", "[mjpeg", "output file #1", "output stream 1:"} {
			if strings.Contains(l, s) {
				return true
			}
		}
	}
	return false
}

func (p *framePipe) read() {
	defer close(p.done)
	defer p.r.Close()
	br := bufio.NewReaderSize(p.r, 64<<10)
	c, a := p.c, p.a
	err := readSMJPEG(br, func(pts time.Duration, jpeg []byte) {
		p.count.Add(1)
		a.metaMu.Lock()
		epoch := a.meta.Epoch
		a.metaMu.Unlock()
		c.deps.Frames(Frame{Camera: c.cfg.CameraName, Run: a.run.ID, PTS: pts, Epoch: epoch, JPEG: jpeg})
	})
	if err != nil && !errors.Is(err, os.ErrClosed) {
		a.log.Warn().Err(err).Msg("the activity feed is unreadable: no activity analysis for the rest of this run (recording goes on)")
	}
	_, _ = io.Copy(io.Discard, br) // to the end: ffmpeg must never block on a full pipe
}

// errFeed marks a feed that is not SMJPEG as ffmpeg writes it.
var errFeed = errors.New("activity feed")

// readSMJPEG reads an SMJPEG stream (Loki's format, as ffmpeg's smjpeg
// muxer writes it) and hands each video frame's time and JPEG to fn, until
// its end ("DONE", or the stream's end) or an error. The header: "\0\nSMJPEG",
// a version and a length (4 bytes each), chunks "_TXT", "_VID", "_SND"
// (length, data) up to "HEND"; then "vidD"/"sndD" chunks (time in
// milliseconds, length, data), and "DONE".
func readSMJPEG(r io.Reader, fn func(pts time.Duration, jpeg []byte)) error {
	var head [16]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // nothing written: ffmpeg never got that far
		}
		return fmt.Errorf("%w: header: %v", errFeed, err)
	}
	if string(head[:8]) != "\x00\nSMJPEG" {
		return fmt.Errorf("%w: not SMJPEG", errFeed)
	}
	var tag [4]byte
	var word [4]byte
	readWord := func() (uint32, error) {
		_, err := io.ReadFull(r, word[:])
		return binary.BigEndian.Uint32(word[:]), err
	}
	var base, last int64 // the times are 32-bit milliseconds: unwrapped
	header := true
	for {
		if _, err := io.ReadFull(r, tag[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%w: %v", errFeed, err)
		}
		switch t := string(tag[:]); {
		case t == "DONE":
			return nil
		case t == "HEND":
			header = false
		case header && (t == "_TXT" || t == "_VID" || t == "_SND"):
			n, err := readWord()
			if err != nil || n > maxChunk {
				return fmt.Errorf("%w: header chunk %q", errFeed, t)
			}
			if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
				return fmt.Errorf("%w: header chunk %q: %v", errFeed, t, err)
			}
		case !header && (t == "vidD" || t == "sndD"):
			ms, err1 := readWord()
			n, err2 := readWord()
			if err1 != nil || err2 != nil || n > maxChunk {
				return fmt.Errorf("%w: bad %q chunk", errFeed, t)
			}
			data := make([]byte, n)
			if _, err := io.ReadFull(r, data); err != nil {
				return fmt.Errorf("%w: %q chunk cut short: %v", errFeed, t, err)
			}
			if t != "vidD" {
				continue
			}
			ts := base + int64(ms)
			if ts < last-(1<<31) {
				base += 1 << 32
				ts += 1 << 32
			}
			last = ts
			fn(time.Duration(ts)*time.Millisecond, data)
		default:
			return fmt.Errorf("%w: unknown chunk %q", errFeed, t)
		}
	}
}
