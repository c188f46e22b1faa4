// Package live is cctvd's live view: each camera's picture now, from the
// segment its ffmpeg is writing, to any number of viewers, with no second
// camera session and no transcode. ffmpeg writes every segment as
// fragmented MP4 with a fragment every half second; live reads the open
// segment in the camera's staging folder (package staging, under
// layout's savePath) as it grows, box by box (package internal/mp4), and
// sends each viewer the init segment, then the fragments from the newest
// keyframe on, following across segment boundaries and ffmpeg restarts.
// It never talks to ffmpeg.
//
// One reader per camera, however many viewers: it starts with the first
// viewer and stops a little after the last one leaves. A viewer that falls
// behind is never buffered for: its queue is bounded, its fragments are
// dropped and it resumes at the next keyframe (see queue). The API carries
// the frames over a WebSocket (wire.go has the messages).
package live

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/layout"
)

// Defaults of Config.
const (
	DefaultMaxViewers          = 32
	DefaultMaxViewersPerCamera = 16
	DefaultQueueFragments      = 16
	DefaultQueueBytes          = 4 << 20
	DefaultPoll                = 100 * time.Millisecond
	DefaultLinger              = 5 * time.Second
)

// Config configures live view.
type Config struct {
	// SavePath is the recordings folder; ffmpeg writes under its staging
	// folder (layout.StagingDir).
	SavePath string
	// MaxViewers is the most viewers at once, of every camera; more are
	// refused. Default DefaultMaxViewers.
	MaxViewers int
	// MaxViewersPerCamera is the most viewers of one camera at once.
	// Default DefaultMaxViewersPerCamera.
	MaxViewersPerCamera int
	// QueueFragments and QueueBytes bound a viewer's queue: one that falls
	// further behind is dropped to the next keyframe. The newest group of
	// pictures a new viewer starts with is kept up to QueueBytes too.
	// Defaults DefaultQueueFragments, DefaultQueueBytes.
	QueueFragments, QueueBytes int
	// Poll is how often a growing segment is looked at for a new fragment.
	// Default DefaultPoll.
	Poll time.Duration
	// Linger is how long a camera's reader outlives its last viewer (a page
	// scrolled back keeps it). Default DefaultLinger.
	Linger time.Duration
}

func (c *Config) setDefaults() {
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&c.MaxViewers, DefaultMaxViewers)
	pick(&c.MaxViewersPerCamera, DefaultMaxViewersPerCamera)
	pick(&c.QueueFragments, DefaultQueueFragments)
	pick(&c.QueueBytes, DefaultQueueBytes)
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
}

// Deps are live view's collaborators.
type Deps struct {
	Log zerolog.Logger
}

// ErrNotRunning: live view is not running (before Run, or after it).
var ErrNotRunning = errors.New("live view is not running")

// LimitError: a viewer refused because of a limit.
type LimitError struct {
	// PerCamera is set when the camera's limit was reached, else the
	// total's.
	PerCamera bool
	Max       int
}

func (e *LimitError) Error() string {
	if e.PerCamera {
		return fmt.Sprintf("too many live viewers of this camera: at most %d at once", e.Max)
	}
	return fmt.Sprintf("too many live viewers: at most %d at once, of every camera", e.Max)
}

// Hub serves every camera's live view. It is safe for concurrent use.
type Hub struct {
	cfg Config
	log zerolog.Logger

	mu      sync.Mutex
	ctx     context.Context // Run's, nil when not running
	sources map[string]*source
	viewers int
	wg      sync.WaitGroup // the sources' goroutines

	drops, joined atomic.Int64
}

// New returns the hub; Run runs it.
func New(cfg Config, deps Deps) *Hub {
	cfg.setDefaults()
	return &Hub{cfg: cfg, log: deps.Log.With().Str("component", "live").Logger(), sources: map[string]*source{}}
}

// Run serves viewers until ctx ends, then closes every viewer and returns
// once every camera's reader has stopped.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.ctx != nil {
		h.mu.Unlock()
		return errors.New("live: Run called twice")
	}
	h.ctx = ctx
	h.mu.Unlock()
	<-ctx.Done()
	h.mu.Lock()
	for _, s := range h.sources {
		s.closeAll()
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}

// Stats are live view's counts.
type Stats struct {
	// Viewers and Cameras are the viewers now, and the cameras being read.
	Viewers int `json:"viewers"`
	Cameras int `json:"cameras"`
	// Joined counts the viewers since start; Drops the times one fell
	// behind and was moved to a newer keyframe.
	Joined int64 `json:"joined"`
	Drops  int64 `json:"drops"`
}

// Stats says how live view is used.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Viewers: h.viewers, Cameras: len(h.sources), Joined: h.joined.Load(), Drops: h.drops.Load()}
}

// Viewer is one viewer of a camera: Next gives its frames in order.
type Viewer struct {
	hub  *Hub
	src  *source
	q    *queue
	once sync.Once
}

// Join adds a viewer of camera, within the limits (*LimitError beyond
// them). The camera is not checked against the config: the caller knows
// which exist. Close the viewer when done.
func (h *Hub) Join(camera string) (*Viewer, error) {
	if !layout.IsFeedStagingName(camera) { // a camera, or its sub feed (<camera>~sub)
		return nil, fmt.Errorf("live: %q cannot be a camera's name", camera)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx == nil || h.ctx.Err() != nil {
		return nil, ErrNotRunning
	}
	if h.viewers >= h.cfg.MaxViewers {
		return nil, &LimitError{Max: h.cfg.MaxViewers}
	}
	s := h.sources[camera]
	if s != nil && s.viewerCount() >= h.cfg.MaxViewersPerCamera {
		return nil, &LimitError{PerCamera: true, Max: h.cfg.MaxViewersPerCamera}
	}
	if s == nil {
		s = newSource(h, camera)
		h.sources[camera] = s
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer close(s.done)
			s.guardedRun()
		}()
	}
	v := &Viewer{hub: h, src: s, q: newQueue(h.cfg.QueueFragments, h.cfg.QueueBytes)}
	s.add(v)
	h.viewers++
	h.joined.Add(1)
	h.log.Debug().Str("camera", camera).Int("viewers", h.viewers).Msg("live viewer joined")
	return v, nil
}

// Admits says whether Join would let a viewer of camera in now: nil, or
// the *LimitError (or ErrNotRunning) it would answer.
func (h *Hub) Admits(camera string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx == nil || h.ctx.Err() != nil {
		return ErrNotRunning
	}
	if h.viewers >= h.cfg.MaxViewers {
		return &LimitError{Max: h.cfg.MaxViewers}
	}
	if s := h.sources[camera]; s != nil && s.viewerCount() >= h.cfg.MaxViewersPerCamera {
		return &LimitError{PerCamera: true, Max: h.cfg.MaxViewersPerCamera}
	}
	return nil
}

// Next returns the viewer's next frame, waiting for it; ErrClosed once
// the viewer is closed (live view stopping), or ctx's error.
func (v *Viewer) Next(ctx context.Context) (*Frame, error) { return v.q.next(ctx) }

// Close lets the viewer go.
func (v *Viewer) Close() {
	v.once.Do(func() {
		v.q.close()
		h := v.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		h.viewers--
		v.src.remove(v)
		h.log.Debug().Str("camera", v.src.camera).Int("viewers", h.viewers).Msg("live viewer left")
	})
}

// forget removes a stopped source, unless a newer one took its place.
func (h *Hub) forget(s *source) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sources[s.camera] == s {
		delete(h.sources, s.camera)
	}
}
