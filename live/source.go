package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/mp4"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// source reads one camera's open segments and hands every fragment to
// the camera's viewers. Its goroutine (run) is the only one reading the
// files; add, remove and the fan-out share its state under mu.
type source struct {
	hub    *Hub
	camera string
	dir    string
	log    zerolog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	done    chan struct{} // closed when run has returned
	mu      sync.Mutex
	viewers map[*Viewer]bool
	idle    *time.Timer // the linger after the last viewer left
	// What a new viewer is given first: the init segment, the clock, and
	// the fragments from the newest keyframe (gop, while gopOK: not over
	// QueueBytes).
	initFrames []*Frame
	clock      *Frame
	gop        []*Frame
	gopBytes   int
	gopOK      bool
	waiting    *Frame // why there is nothing, while there is nothing

	// The timeline, run's goroutine only: the init in use, how many init
	// segments it has had, and where the next fragment goes.
	init     *mp4.InitSegment
	stream   int
	next     uint64
	timeline bool
}

func newSource(h *Hub, camera string) *source {
	ctx, cancel := context.WithCancel(h.ctx)
	return &source{hub: h, camera: camera, dir: layout.StagingDirOf(h.cfg.SavePath, camera), ctx: ctx, cancel: cancel,
		log: h.log.With().Str("camera", camera).Logger(), viewers: map[*Viewer]bool{}, done: make(chan struct{})}
}

// guardedRun reads the camera until the source stops (its own context:
// cancelled after the linger, or with the hub's). What it parses comes
// from the camera: a panic stops this camera's live view, logged, and
// closes its viewers; it never takes the daemon down.
func (s *source) guardedRun() {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error().Str("panic", fmt.Sprint(r)).Str("stack", string(debug.Stack())).Msg("live: reading the camera's stream failed; its viewers are let go")
			s.hub.forget(s)
			s.closeAll()
		}
	}()
	s.run(s.ctx)
}

func (s *source) viewerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.viewers)
}

// add gives a new viewer what it starts with. Under the hub's lock.
func (s *source) add(v *Viewer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	s.viewers[v] = true
	if s.initFrames == nil {
		if s.waiting != nil {
			v.q.push(s.waiting)
		}
		v.q.startAtKey()
		return
	}
	for _, f := range s.initFrames {
		v.q.push(f)
	}
	if s.clock != nil {
		v.q.push(s.clock)
	}
	if !s.gopOK || len(s.gop) == 0 {
		v.q.startAtKey()
		return
	}
	for _, f := range s.gop {
		v.q.prefill(f)
	}
}

// remove lets a viewer go; the last one starts the linger, after which the
// source stops unless a viewer came back. Under the hub's lock.
func (s *source) remove(v *Viewer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.viewers, v)
	if len(s.viewers) > 0 || s.idle != nil {
		return
	}
	s.idle = time.AfterFunc(s.hub.cfg.Linger, s.stopIfIdle)
}

func (s *source) stopIfIdle() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.viewers) > 0 {
		return
	}
	if h.sources[s.camera] == s {
		delete(h.sources, s.camera)
	}
	s.cancel()
}

// closeAll closes every viewer: live view is stopping.
func (s *source) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v := range s.viewers {
		v.q.close()
	}
	s.cancel()
}

// publish hands a frame to every viewer (never waiting for one), and keeps
// the newest group of pictures for the next viewer.
func (s *source) publish(f *Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.media {
		switch {
		case f.key:
			clear(s.gop)
			s.gop, s.gopBytes, s.gopOK = append(s.gop[:0], f), len(f.Data), true
		case s.gopOK && s.gopBytes+len(f.Data) <= s.hub.cfg.QueueBytes:
			s.gop = append(s.gop, f)
			s.gopBytes += len(f.Data)
		default:
			clear(s.gop)
			s.gop, s.gopBytes, s.gopOK = s.gop[:0], 0, false
		}
	}
	for v := range s.viewers {
		if v.q.push(f) {
			s.hub.drops.Add(1)
			s.log.Debug().Msg("a live viewer fell behind: dropped to the next keyframe")
		}
	}
}

// setInit makes in the stream's init segment, for the viewers there and
// those to come; a new stream starts at a keyframe.
func (s *source) setInit(in *mp4.InitSegment, stream int) {
	fr := initFrames(in, stream)
	s.mu.Lock()
	s.initFrames, s.waiting, s.clock = fr, nil, nil
	clear(s.gop)
	s.gop, s.gopBytes, s.gopOK = s.gop[:0], 0, false
	s.mu.Unlock()
	for _, f := range fr {
		s.publish(f)
	}
}

func (s *source) setClock(f *Frame) {
	s.mu.Lock()
	s.clock = f
	s.mu.Unlock()
	s.publish(f)
}

// setWaiting says why there is nothing to show, to the viewers that have
// nothing yet and to those to come.
func (s *source) setWaiting(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.initFrames != nil || (s.waiting != nil && string(s.waiting.Data) == string(waitingFrame(reason).Data)) {
		return
	}
	s.waiting = waitingFrame(reason)
	for v := range s.viewers {
		v.q.push(s.waiting)
	}
}

// run reads the camera's open segments until ctx ends.
func (s *source) run(ctx context.Context) {
	defer s.hub.forget(s)
	defer s.cancel()
	var last openSegment
	var followed, warned bool
	for ctx.Err() == nil {
		seg, ok, err := locate(s.dir)
		switch {
		case err != nil:
			if !warned {
				s.log.Warn().Err(err).Msg("live: cannot read the staging folder")
				warned = true
			}
		case !ok:
			s.setWaiting("the camera is not recording")
		case followed && seg.same(last):
			// done with it (its run ended): wait for the next one
		default:
			warned = false
			if err := s.follow(ctx, seg, !followed); err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Str("segment", seg.path()).Msg("live: cannot follow the open segment")
			}
			last, followed = seg, true
			continue
		}
		// After a run, the next one is due within seconds (a restart):
		// looked for more often.
		wait := 10 * s.hub.cfg.Poll
		if followed {
			wait = 2 * s.hub.cfg.Poll
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// sleep waits d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errEnded: the segment will not grow any more.
var errEnded = errors.New("segment ended")

// segmentReader follows one open segment as ffmpeg writes it.
type segmentReader struct {
	s     *source
	seg   openSegment
	f     *os.File
	off   int64
	polls int
	ended bool // the segment is known to be final: what is there is all
}

// follow reads seg from its init segment to its end: when ffmpeg has moved
// on to the next segment, or its run ended. fresh: the source's first
// segment, joined where it is (at its newest keyframe) rather than from
// its start.
func (s *source) follow(ctx context.Context, seg openSegment, fresh bool) error {
	f, err := os.Open(seg.path())
	if errors.Is(err, os.ErrNotExist) {
		return nil // closed and moved meanwhile: the next one is open
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r := &segmentReader{s: s, seg: seg, f: f}
	in, err := r.readInit(ctx)
	if err != nil {
		return ignoreEnd(err)
	}
	if s.init == nil || !s.init.SameStream(in) {
		if s.timeline && s.init != nil && s.init.Timescale != in.Timescale {
			s.next = s.next * uint64(in.Timescale) / uint64(s.init.Timescale)
		}
		s.stream++
		s.setInit(in, s.stream)
	}
	s.init = in
	if fresh {
		if err := r.skipToNewestKeyframe(in); err != nil {
			return ignoreEnd(err)
		}
	}
	start, startKnown := segmentStart(seg.run, seg.index)
	var shift int64
	shiftSet, clockSent, clockUnknown := false, false, false
	for {
		frag, err := r.nextFragment(ctx, in)
		if err != nil {
			return ignoreEnd(err)
		}
		if !shiftSet {
			if s.timeline {
				shift = int64(s.next) - int64(frag.DecodeTime)
			}
			s.timeline, shiftSet = true, true
		}
		if !clockSent {
			if r.seg.meta.Epoch.IsZero() { // the supervisor writes it once ffmpeg's progress shows it
				if m, err := staging.ReadMeta(seg.run.MetaPath()); err == nil {
					r.seg.meta = m
				}
			}
			w := time.Time{}
			if startKnown {
				w = wallStart(r.seg.meta, start)
			}
			if !w.IsZero() || !clockUnknown {
				// Unknown: the mapping of the segment before does not hold
				// (the gap between two runs is not on the timeline).
				s.setClock(clockFrame(float64(shift)/float64(in.Timescale), w))
				clockSent, clockUnknown = !w.IsZero(), w.IsZero()
			}
		}
		t := max(int64(frag.DecodeTime)+shift, 0)
		data, err := frag.WithDecodeTime(uint64(t))
		if err != nil {
			return err
		}
		s.next = uint64(t) + frag.Duration
		s.publish(&Frame{Data: data, media: true, key: frag.Keyframe})
	}
}

func ignoreEnd(err error) error {
	if errors.Is(err, errEnded) {
		return nil
	}
	return err
}

// readInit waits for the segment's ftyp and moov, and parses them.
func (r *segmentReader) readInit(ctx context.Context) (*mp4.InitSegment, error) {
	for {
		size, err := r.size()
		if err != nil {
			return nil, err
		}
		var off int64
		for {
			h, err := mp4.ReadBoxHeader(r.f, off, size)
			if errors.Is(err, mp4.ErrIncomplete) {
				break
			}
			if err != nil {
				return nil, err
			}
			if h.Type == "moof" || h.Type == "mdat" {
				return nil, fmt.Errorf("%w: a fragment before the moov", mp4.ErrFormat)
			}
			if h.Size > mp4.MaxInitSize() {
				return nil, fmt.Errorf("%w: a %s box of %d bytes", mp4.ErrFormat, h.Type, h.Size)
			}
			off += h.Size
			if h.Type == "moov" {
				b := make([]byte, off)
				if _, err := r.f.ReadAt(b, 0); err != nil {
					return nil, err
				}
				r.off = off
				return mp4.ParseInitSegment(b)
			}
		}
		if err := r.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// skipToNewestKeyframe moves the reader to the newest fragment there that
// starts at a keyframe, reading only the moof boxes on the way.
func (r *segmentReader) skipToNewestKeyframe(in *mp4.InitSegment) error {
	size, err := r.size()
	if err != nil {
		return err
	}
	newest := r.off
	for off := r.off; ; {
		h, err := mp4.ReadBoxHeader(r.f, off, size)
		if errors.Is(err, mp4.ErrIncomplete) {
			break
		}
		if err != nil {
			return err
		}
		if h.Type == "moof" && h.Size <= mp4.MaxInitSize() {
			b := make([]byte, h.Size)
			if _, err := r.f.ReadAt(b, off); err != nil {
				return err
			}
			if frag, err := mp4.ParseFragment(in, b); err == nil && frag.Keyframe {
				if _, err := mp4.ReadBoxHeader(r.f, off+h.Size, size); err == nil {
					newest = off // its mdat is all there too
				}
			}
		}
		off += h.Size
	}
	r.off = newest
	return nil
}

// nextFragment returns the next whole fragment (moof and mdat), waiting
// for ffmpeg to write it; errEnded once the segment is final and read.
// Other boxes (ffmpeg's mfra trailer) are skipped.
func (r *segmentReader) nextFragment(ctx context.Context, in *mp4.InitSegment) (*mp4.Fragment, error) {
	for {
		size, err := r.size()
		if err != nil {
			return nil, err
		}
		h, err := mp4.ReadBoxHeader(r.f, r.off, size)
		if err == nil && h.Type == "moof" {
			var d mp4.BoxHeader
			d, err = mp4.ReadBoxHeader(r.f, r.off+h.Size, size)
			if err == nil && d.Type != "mdat" {
				err = fmt.Errorf("%w: a moof followed by %q", mp4.ErrFormat, d.Type)
			}
			if err == nil && h.Size+d.Size > mp4.MaxFragmentSize() {
				err = fmt.Errorf("%w: a fragment of %d bytes", mp4.ErrFormat, h.Size+d.Size)
			}
			if err == nil {
				b := make([]byte, h.Size+d.Size)
				if _, err := r.f.ReadAt(b, r.off); err != nil && !errors.Is(err, io.EOF) {
					return nil, err
				}
				r.off += h.Size + d.Size
				return mp4.ParseFragment(in, b)
			}
		}
		switch {
		case err == nil: // another box: skipped
			r.off += h.Size
			continue
		case !errors.Is(err, mp4.ErrIncomplete):
			return nil, err
		}
		if err := r.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// size is the file's size now.
func (r *segmentReader) size() (int64, error) {
	fi, err := r.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// wait waits for the file to grow: errEnded when it will not any more
// (the next segment exists, or the run's ffmpeg is gone), looked at
// once more after that is known, so that nothing written before is missed.
func (r *segmentReader) wait(ctx context.Context) error {
	if r.ended {
		return errEnded
	}
	if r.finished() {
		r.ended = true
		return nil // one more look
	}
	if !sleep(ctx, r.s.hub.cfg.Poll) {
		return ctx.Err()
	}
	return nil
}

// finished says whether ffmpeg is done with the segment: the next segment
// of its run exists (the segment muxer closes a segment before it opens
// the next), or, looked at every tenth poll, the run has ended.
func (r *segmentReader) finished() bool {
	if _, err := os.Stat(r.seg.run.SegmentPath(r.seg.index + 1)); err == nil {
		return true
	}
	r.polls++
	if r.polls%10 != 0 {
		return false
	}
	m, err := staging.ReadMeta(r.seg.run.MetaPath())
	if err != nil {
		return errors.Is(err, staging.ErrNoMeta)
	}
	r.seg.meta.Epoch = m.Epoch
	return m.Exited || !m.Alive()
}
