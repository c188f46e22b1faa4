// Package snapshot makes a camera's still for the page on the box: one
// JPEG of the newest keyframe of the segment its ffmpeg is writing (from
// package live), so a still is at most a group of pictures old whatever
// videoDuration is; else, of the last second of its newest closed segment
// on disk. Made by ffmpeg and kept until a newer keyframe or segment
// exists. It never reads the camera, so a page left open adds no load to
// it; at most a few ffmpegs run at once, each with a deadline and the
// minimal child environment.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/live"
)

// Catalog is what snapshots need of the catalog.
type Catalog interface {
	List(ctx context.Context, f catalog.Filter) ([]catalog.Record, *catalog.Cursor, error)
}

// Config configures the stills.
type Config struct {
	// FFmpegPath is the ffmpeg binary. Default config.DefaultFFmpegPath.
	FFmpegPath string
	// Timeout bounds one ffmpeg. Default media.StillTimeout.
	Timeout time.Duration
	// MaxConcurrent is the most ffmpegs making stills at once. Default 2.
	MaxConcurrent int
	// MaxWidth: a wider picture is scaled down to it. Default 960.
	MaxWidth int
}

func (c *Config) setDefaults() {
	if c.FFmpegPath == "" {
		c.FFmpegPath = config.DefaultFFmpegPath
	}
	if c.Timeout <= 0 {
		c.Timeout = media.StillTimeout
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 2
	}
	if c.MaxWidth <= 0 {
		c.MaxWidth = 960
	}
}

// Live is what stills need of live view: the newest keyframe of the
// segment a camera's ffmpeg is writing (live.ErrNoKeyframe when none).
type Live interface {
	NewestKeyframe(camera string) (live.Keyframe, error)
}

// Deps are the stills' collaborators.
type Deps struct {
	Catalog Catalog
	// Live, if set, gives stills from the open segment.
	Live Live
	Log  zerolog.Logger
	// Now is the clock a still's age is read on. Default time.Now.
	Now func() time.Time
}

// Image is a camera's still.
type Image struct {
	// SegmentID and Segment are the catalog id and file name of the
	// segment it was taken from; At is that segment's end.
	SegmentID int64
	Segment   string
	At        time.Time
	JPEG      []byte
	// Open: taken from the segment being written (Segment names its file
	// in the staging folder; SegmentID is 0; At is the keyframe's time).
	Open bool
}

// ErrNoSegment: the camera has no closed segment on disk.
var ErrNoSegment = errors.New("snapshot: no segment of this camera on disk")

// Service makes and keeps the stills. It is safe for concurrent use.
type Service struct {
	cfgMu sync.Mutex
	cfg   Config // under cfgMu

	deps Deps
	log  zerolog.Logger
	sem  chan struct{} // one token per ffmpeg running

	mu   sync.Mutex
	cams map[string]*still

	runs, running, peak atomic.Int64
}

// still is one camera's cached image.
type still struct {
	lock     chan struct{} // held (full) while its image is being made: one ffmpeg per camera
	img      *Image
	failedID int64 // the newest segment whose still could not be made, not tried again

	live     *Image    // the newest still of the open segment
	liveID   string    // the keyframe it shows
	liveMade time.Time // when it was made
	liveFail string    // a keyframe whose still could not be made, not tried again
}

// New returns the stills service.
func New(cfg Config, deps Deps) *Service {
	cfg.setDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Service{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "snapshot").Logger(),
		sem: make(chan struct{}, cfg.MaxConcurrent), cams: map[string]*still{}}
}

// Reconfigure takes a new ffmpeg path and timeout (after a reload); the
// concurrency limit stays as it was built.
func (s *Service) Reconfigure(cfg Config) {
	cfg.setDefaults()
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.cfg.FFmpegPath, s.cfg.Timeout, s.cfg.MaxWidth = cfg.FFmpegPath, cfg.Timeout, cfg.MaxWidth
}

func (s *Service) config() Config {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	return s.cfg
}

// Stats count the ffmpegs run.
type Stats struct {
	// Runs counts the ffmpegs started; Peak is the most that ran at once.
	Runs, Peak int64
}

// Stats says how many ffmpegs the service ran.
func (s *Service) Stats() Stats { return Stats{Runs: s.runs.Load(), Peak: s.peak.Load()} }

func (s *Service) still(camera string) *still {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.cams[camera]
	if !ok {
		st = &still{lock: make(chan struct{}, 1)}
		s.cams[camera] = st
	}
	return st
}

// Get returns the camera's still from its newest closed segment on disk:
// the cached one while no newer segment exists, else a new one. When the
// newest segment's still cannot be made (a damaged file), the previous
// still is returned, and that segment is not tried again.
func (s *Service) Get(ctx context.Context, camera string) (Image, error) {
	st := s.still(camera)
	select {
	case st.lock <- struct{}{}:
	case <-ctx.Done():
		return Image{}, ctx.Err()
	}
	defer func() { <-st.lock }()
	if img, ok := s.fromLive(ctx, camera, st); ok {
		return img, nil
	}
	rec, err := s.newest(ctx, camera)
	if err != nil {
		return Image{}, err
	}
	if st.img != nil && (st.img.SegmentID == rec.ID || st.failedID == rec.ID) {
		return *st.img, nil
	}
	if st.failedID == rec.ID {
		return Image{}, fmt.Errorf("snapshot of %s: %s could not be read", camera, rec.Name())
	}
	jpeg, err := s.make(ctx, rec.Path)
	if err != nil {
		if ctx.Err() != nil { // the caller left while waiting: not the file's fault
			return Image{}, ctx.Err()
		}
		st.failedID = rec.ID
		s.log.Warn().Err(err).Str("camera", camera).Str("segment", rec.Name()).Msg("cannot make a still of the newest segment")
		if st.img != nil {
			return *st.img, nil
		}
		return Image{}, err
	}
	st.img = &Image{SegmentID: rec.ID, Segment: rec.Name(), At: rec.End, JPEG: jpeg}
	return *st.img, nil
}

// MinLiveAge: a still of the open segment is made again, for a newer
// keyframe, only once the one before is this old (many pages asking at
// once make one ffmpeg run).
const MinLiveAge = 2 * time.Second

// fromLive is the still of the newest keyframe of the segment the
// camera's ffmpeg is writing, under st.lock; ok is false when there is
// none (the camera is not recording) or it cannot be made.
func (s *Service) fromLive(ctx context.Context, camera string, st *still) (Image, bool) {
	if s.deps.Live == nil {
		return Image{}, false
	}
	if st.live != nil && s.deps.Now().Sub(st.liveMade) < MinLiveAge {
		return *st.live, true
	}
	k, err := s.deps.Live.NewestKeyframe(camera)
	if err != nil {
		if !errors.Is(err, live.ErrNoKeyframe) {
			s.log.Warn().Err(err).Str("camera", camera).Msg("cannot read the open segment's newest keyframe")
		}
		return Image{}, false
	}
	if st.live != nil && k.ID == st.liveID {
		return *st.live, true
	}
	if k.ID == st.liveFail {
		return Image{}, false
	}
	jpeg, err := s.makeFrom(ctx, k.MP4)
	if err != nil {
		if ctx.Err() == nil {
			st.liveFail = k.ID
			s.log.Warn().Err(err).Str("camera", camera).Str("segment", k.Segment).Msg("cannot make a still of the open segment")
		}
		return Image{}, false
	}
	at := k.At
	if at.IsZero() {
		at = s.deps.Now()
	}
	st.live, st.liveID, st.liveMade = &Image{Segment: k.Segment, At: at, JPEG: jpeg, Open: true}, k.ID, s.deps.Now()
	return *st.live, true
}

// newest is the camera's newest closed segment whose file exists (the
// catalog learns of a vanished file at its next check).
func (s *Service) newest(ctx context.Context, camera string) (catalog.Record, error) {
	present := true
	camera, _ = layout.StagingFeed(camera) // a sub feed's still falls back to the camera's newest closed segment
	recs, _, err := s.deps.Catalog.List(ctx, catalog.Filter{Camera: camera, Present: &present, Limit: 3})
	if err != nil {
		return catalog.Record{}, fmt.Errorf("snapshot of %s: %w", camera, err)
	}
	for _, r := range recs {
		if _, err := os.Stat(r.Path); err == nil {
			return r, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return catalog.Record{}, fmt.Errorf("snapshot of %s: %w", camera, err)
		}
	}
	return catalog.Record{}, ErrNoSegment
}

// make runs ffmpeg on the last second of the segment at path and returns
// the JPEG it writes. It waits for a free slot as long as ctx allows; once
// started, ffmpeg runs to its own deadline even if the caller leaves, so
// that the still is kept for the next one.
func (s *Service) make(ctx context.Context, path string) ([]byte, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	s.runs.Add(1)

	cfg := s.config()
	// Once started it runs to its own deadline, even if the caller left.
	return media.Still(context.WithoutCancel(ctx), cfg.FFmpegPath, path, cfg.MaxWidth, cfg.Timeout)
}

// makeFrom is make for a small MP4 in memory (a keyframe of the open
// segment).
func (s *Service) makeFrom(ctx context.Context, mp4 []byte) ([]byte, error) {
	if err := s.slot(ctx); err != nil {
		return nil, err
	}
	defer func() { <-s.sem }()
	defer s.running.Add(-1)
	cfg := s.config()
	return media.StillFromMP4(context.WithoutCancel(ctx), cfg.FFmpegPath, mp4, cfg.MaxWidth, cfg.Timeout)
}

// slot waits for a free ffmpeg slot and counts the run.
func (s *Service) slot(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	n := s.running.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	s.runs.Add(1)
	return nil
}
