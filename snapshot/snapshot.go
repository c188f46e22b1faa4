// Package snapshot makes a camera's still for the page on the box: one
// JPEG of the last second of its newest closed segment on disk, made by
// ffmpeg and kept until a newer segment exists. It never reads the camera,
// so a page left open adds no load to it; at most a few ffmpegs run at
// once, each with a deadline and the minimal child environment.
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

// Deps are the stills' collaborators.
type Deps struct {
	Catalog Catalog
	Log     zerolog.Logger
}

// Image is a camera's still.
type Image struct {
	// SegmentID and Segment are the catalog id and file name of the
	// segment it was taken from; At is that segment's end.
	SegmentID int64
	Segment   string
	At        time.Time
	JPEG      []byte
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
}

// New returns the stills service.
func New(cfg Config, deps Deps) *Service {
	cfg.setDefaults()
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
	rec, err := s.newest(ctx, camera)
	if err != nil {
		return Image{}, err
	}
	st := s.still(camera)
	select {
	case st.lock <- struct{}{}:
	case <-ctx.Done():
		return Image{}, ctx.Err()
	}
	defer func() { <-st.lock }()
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

// newest is the camera's newest closed segment whose file exists (the
// catalog learns of a vanished file at its next check).
func (s *Service) newest(ctx context.Context, camera string) (catalog.Record, error) {
	present := true
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
