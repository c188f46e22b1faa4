package activity

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Input is one frame of a camera's activity feed as the supervisor reads
// it from ffmpeg: a small JPEG and its stream time, or the end of a run.
type Input struct {
	Camera, Run string
	PTS         time.Duration
	// Epoch is the wall-clock time of the run's stream time 0 when the
	// frame came (zero until known); events are dated with it.
	Epoch time.Time
	JPEG  []byte
	// End says the run sends no more frames.
	End bool
}

// SegmentRef names a closed segment: its camera, run and stream times.
type SegmentRef struct {
	Camera, Run string
	From, To    time.Duration
	// Tag is the caller's, handed back with a late summary.
	Tag any
}

// Event is an interval beginning (Started) or ending on a camera, dated on
// the wall clock.
type Event struct {
	Camera  string    `json:"camera"`
	Started bool      `json:"started"`
	At      time.Time `json:"at"`
	Level   float64   `json:"level"`
}

// Config tunes a Service; zero fields take their defaults.
type Config struct {
	Params Params
	// Hold: a still spell shorter than this does not end an interval.
	// Default DefaultHold.
	Hold time.Duration
	// Queue bounds the frames waiting for analysis: beyond it new frames
	// are dropped, counted and warned about once per episode. Default 256.
	Queue int
	// PendingTimeout: a segment summarised before all its frames came is
	// made final with what came after this long. Default 30s.
	PendingTimeout time.Duration
}

// Deps are a Service's collaborators.
type Deps struct {
	Log zerolog.Logger
	// OnFinal, if set, gets the final summary of a segment that Segment
	// answered provisionally (its last frames came after it closed). It
	// must not block.
	OnFinal func(ref SegmentRef, s Summary)
	// OnEvent, if set, gets every interval's beginning and end as frames
	// show them. It must not block.
	OnEvent func(Event)
	// Mono is a clock that never steps, for the pending timeout.
	Mono func() time.Duration
	// After waits on it; time.After by default.
	After func(time.Duration) <-chan time.Time
}

// Status is what a Service did since it started.
type Status struct {
	// Frames analysed; Dropped because the queue was full; Undecodable
	// frames that were not JPEG pictures.
	Frames      uint64 `json:"frames"`
	Dropped     uint64 `json:"dropped"`
	Undecodable uint64 `json:"undecodable"`
	// Late counts segments whose last frames came after they closed (their
	// summary was stored twice); Waiting how many wait for frames now.
	Late    uint64 `json:"late"`
	Waiting int    `json:"waiting"`
}

// Service analyses the activity feeds of every camera: Offer queues a
// frame (never blocking), Run analyses them in order, Segment summarises a
// closed segment. Its methods are safe for concurrent use.
type Service struct {
	cfg  Config
	deps Deps
	log  zerolog.Logger

	qmu      sync.Mutex
	queue    []Input
	dropping bool
	wake     chan struct{}

	mu       sync.Mutex // trackers, pending, status
	trackers map[string]*Tracker
	epochs   map[string]time.Time // run -> newest epoch
	pending  map[string][]pendingSeg
	status   Status
}

type pendingSeg struct {
	ref   SegmentRef
	since time.Duration
}

// NewService returns a Service.
func NewService(cfg Config, deps Deps) *Service {
	if cfg.Queue <= 0 {
		cfg.Queue = 256
	}
	if cfg.PendingTimeout <= 0 {
		cfg.PendingTimeout = 30 * time.Second
	}
	if deps.Mono == nil {
		base := time.Now()
		deps.Mono = func() time.Duration { return time.Since(base) }
	}
	if deps.After == nil {
		deps.After = time.After
	}
	return &Service{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "activity").Logger(),
		wake: make(chan struct{}, 1), trackers: map[string]*Tracker{}, epochs: map[string]time.Time{},
		pending: map[string][]pendingSeg{}}
}

// Offer queues a frame or a run's end. It never blocks: a frame that finds
// the queue full is dropped and counted (false); a run's end is always
// queued.
func (s *Service) Offer(in Input) bool {
	s.qmu.Lock()
	if !in.End && len(s.queue) >= s.cfg.Queue {
		warn := !s.dropping
		s.dropping = true
		s.qmu.Unlock()
		s.mu.Lock()
		s.status.Dropped++
		s.mu.Unlock()
		if warn {
			s.log.Warn().Int("limit", s.cfg.Queue).Msg("activity analysis is behind: dropping frames (counted in /status, activity.dropped); recording is not affected")
		}
		return false
	}
	s.queue = append(s.queue, in)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// Status says what the service did.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	for _, p := range s.pending {
		st.Waiting += len(p)
	}
	return st
}

// Run analyses queued frames until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	for {
		s.drain()
		s.expire()
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-s.deps.After(time.Second): // pending timeouts
		}
	}
}

func (s *Service) drain() {
	for {
		s.qmu.Lock()
		if len(s.queue) == 0 {
			s.dropping = false
			s.qmu.Unlock()
			return
		}
		in := s.queue[0]
		s.queue[0] = Input{}
		s.queue = s.queue[1:]
		s.qmu.Unlock()
		s.process(in)
	}
}

func (s *Service) process(in Input) {
	var f Frame
	if !in.End {
		var ok bool
		if f, ok = decodeJPEG(in.JPEG); !ok {
			s.mu.Lock()
			s.status.Undecodable++
			s.mu.Unlock()
			return
		}
		f.PTS = in.PTS
	}
	var ev *Event
	var finals []pendingSeg
	var sums []Summary
	s.mu.Lock()
	t := s.trackers[in.Camera]
	if t == nil {
		t = NewTracker(s.cfg.Params, s.cfg.Hold)
		s.trackers[in.Camera] = t
	}
	var ch *Change
	if in.End {
		ch = t.EndRun(in.Run)
	} else {
		s.status.Frames++
		if !in.Epoch.IsZero() {
			s.epochs[in.Run] = in.Epoch
		}
		_, ch = t.Add(in.Run, f)
	}
	if ch != nil {
		if ep, ok := s.epochs[ch.Run]; ok {
			ev = &Event{Camera: in.Camera, Started: ch.Started, At: ep.Add(ch.At), Level: ch.Level}
		}
	}
	if in.End {
		delete(s.epochs, in.Run)
	}
	// Segments waiting for frames, in order: the first that is not final
	// holds the rest.
	p := s.pending[in.Camera]
	for len(p) > 0 {
		sum, k := t.Summarize(p[0].ref.Run, p[0].ref.From, p[0].ref.To, true)
		if k == Provisional {
			break
		}
		if k == Final {
			finals, sums = append(finals, p[0]), append(sums, sum)
		}
		p = p[1:]
	}
	s.setPending(in.Camera, p)
	s.status.Late += uint64(len(finals))
	s.mu.Unlock()
	if ev != nil && s.deps.OnEvent != nil {
		s.deps.OnEvent(*ev)
	}
	for i, f := range finals {
		if s.deps.OnFinal != nil {
			s.deps.OnFinal(f.ref, sums[i])
		}
	}
}

func (s *Service) setPending(camera string, p []pendingSeg) {
	if len(p) == 0 {
		delete(s.pending, camera)
		return
	}
	s.pending[camera] = p
}

// expire makes final the segments that waited for their frames too long.
func (s *Service) expire() {
	now := s.deps.Mono()
	type late struct {
		ref SegmentRef
		sum Summary
	}
	var out []late
	s.mu.Lock()
	for cam, p := range s.pending {
		t := s.trackers[cam]
		for len(p) > 0 && now-p[0].since >= s.cfg.PendingTimeout {
			// The frames are not coming (the feed died, the camera's frames
			// are held back): what came is what is known.
			if t != nil {
				if sum, k := t.summarize(p[0].ref.Run, p[0].ref.From, p[0].ref.To, true, true); k == Final {
					out = append(out, late{p[0].ref, sum})
				}
			}
			p = p[1:]
		}
		s.setPending(cam, p)
	}
	s.status.Late += uint64(len(out))
	s.mu.Unlock()
	for _, l := range out {
		if s.deps.OnFinal != nil {
			s.deps.OnFinal(l.ref, l.sum)
		}
	}
}

// Segment summarises a closed segment. Final: every frame of it has been
// analysed. Provisional: some may still come (the segment closed before its
// last frames were analysed): the summary is what is known now, and OnFinal
// will get the final one. Unknown: no frame of it was seen.
func (s *Service) Segment(ref SegmentRef) (Summary, Knowledge) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.trackers[ref.Camera]
	if t == nil {
		return Summary{}, Unknown
	}
	if p := s.pending[ref.Camera]; len(p) > 0 { // in order, behind those
		sum, k := t.Summarize(ref.Run, ref.From, ref.To, false)
		if k != Unknown {
			s.pending[ref.Camera] = append(p, pendingSeg{ref: ref, since: s.deps.Mono()})
			k = Provisional
		}
		return sum, k
	}
	sum, k := t.Summarize(ref.Run, ref.From, ref.To, true)
	if k == Provisional {
		s.pending[ref.Camera] = []pendingSeg{{ref: ref, since: s.deps.Mono()}}
	}
	return sum, k
}

// Forget drops a camera's state (removed from the config).
func (s *Service) Forget(camera string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.trackers, camera)
	delete(s.pending, camera)
}

// decodeJPEG reads a JPEG's luma.
func decodeJPEG(b []byte) (Frame, bool) {
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return Frame{}, false
	}
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	if w <= 0 || h <= 0 || w*h > 1<<20 {
		return Frame{}, false
	}
	pix := make([]byte, w*h)
	switch m := img.(type) {
	case *image.YCbCr:
		for y := range h {
			copy(pix[y*w:(y+1)*w], m.Y[y*m.YStride:y*m.YStride+w])
		}
	case *image.Gray:
		for y := range h {
			copy(pix[y*w:(y+1)*w], m.Pix[y*m.Stride:y*m.Stride+w])
		}
	default:
		return Frame{}, false
	}
	return Frame{W: w, H: h, Pix: pix}, true
}
