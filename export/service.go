package export

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
)

// ServiceConfig configures exports on the box.
type ServiceConfig struct {
	Bucket string
	// Prefix is s3Path: the bucket's keys are
	// <Prefix>/<camera>/<YYYY-MM-DD>/<name>.
	Prefix string
	// Temp is where downloaded segments go, and the free space they leave
	// there (storageConfig.exportTempDir, savePath and minFreeGB); shared
	// by the service's builds. Default: os.TempDir() with its
	// filesystem's default floor.
	Temp *TempSpace
	// Version is cctvd's, for manifests.
	Version string
	// Keep is how long a clip no one reads stays ready, so that a
	// player's Range requests and the manifest do not rebuild it (nor
	// download its S3 sources again). Default 2 minutes.
	Keep time.Duration
	// BuildTimeout bounds building one clip. Default 30 minutes.
	BuildTimeout time.Duration
	// MaxBuilds is how many clips may be built at once (each reads, and
	// may download, a range's footage): more is ErrBusy. Default 2.
	MaxBuilds int
}

// ServiceDeps are the box exports' collaborators.
type ServiceDeps struct {
	Catalog Catalog
	// S3 reads segments no longer on the box; nil when there is none.
	S3  S3API
	Log zerolog.Logger
	Now func() time.Time
	// PrunedBefore, if set, says before when the catalog has forgotten
	// footage it no longer holds locally (storageConfig.catalogRetentionDays;
	// zero: it keeps every row). Footage starting before then is also
	// looked for in the bucket, so that a box still exports it.
	PrunedBefore func() time.Time
	// Locations, if set, are every (bucket, prefix) the catalog has
	// uploaded to (catalog.Locations): footage it has pruned is looked for
	// under each, not only under the configured bucket and prefix, so that
	// a change of s3Bucket or s3Path loses none.
	Locations func(ctx context.Context) ([]catalog.Location, error)
}

// Service makes a box's exports for the API: spans from the catalog and
// the gap log, clips from local files and S3, each clip kept for a while
// after its last reader, so that the Range requests of one player share
// one build. Its methods are safe for concurrent use.
type Service struct {
	cfg  ServiceConfig
	deps ServiceDeps
	log  zerolog.Logger

	// distrust remembers local files that did not match: later clips read
	// their S3 copies.
	distrust Distrust

	mu       sync.Mutex
	s3       S3API
	bucket   string
	prefix   string
	clips    map[string]*entry
	building int // builds under way
	closed   bool
}

// entry is a clip being built or ready.
type entry struct {
	ready chan struct{}
	clip  *Clip // the shared clip; its files close when evicted
	err   error
	refs  int
	timer *time.Timer
}

// NewService returns the box's export service.
func NewService(cfg ServiceConfig, deps ServiceDeps) *Service {
	if cfg.Keep == 0 {
		cfg.Keep = 2 * time.Minute
	}
	if cfg.BuildTimeout == 0 {
		cfg.BuildTimeout = 30 * time.Minute
	}
	if cfg.MaxBuilds == 0 {
		cfg.MaxBuilds = 2
	}
	if cfg.Temp == nil {
		cfg.Temp = &TempSpace{}
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Service{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "export").Logger(),
		s3: deps.S3, bucket: cfg.Bucket, prefix: cfg.Prefix, clips: map[string]*entry{}}
}

// Temp is where the service's builds download, and the free space they
// leave there (TempSpace.Configure changes it).
func (s *Service) Temp() *TempSpace { return s.cfg.Temp }

// Reconfigure switches to another bucket, prefix or S3 client (after a
// reload); clips already made keep theirs.
func (s *Service) Reconfigure(bucket, prefix string, client S3API) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bucket, s.prefix = bucket, prefix
	if client != nil {
		s.s3 = client
	}
}

// sources returns the camera's segments overlapping [from, to) and the gap
// log's entries there: the catalog's, and, for the part of the range the
// catalog has pruned, the bucket's segments it no longer lists.
func (s *Service) sources(ctx context.Context, camera string, from, to time.Time) ([]Segment, []catalog.Gap, error) {
	segs, gaps, err := FromCatalog(ctx, s.deps.Catalog, camera, from, to)
	if err != nil || s.deps.PrunedBefore == nil {
		return segs, gaps, err
	}
	horizon := s.deps.PrunedBefore()
	s.mu.Lock()
	client, bucket, prefix := s.s3, s.bucket, s.prefix
	s.mu.Unlock()
	if horizon.IsZero() || !from.Before(horizon) || client == nil {
		return segs, gaps, nil
	}
	// Rows go by their start: a segment starting just before the horizon
	// may reach past it; its neighbours within a day are looked for too.
	listed, err := ListBucket(ctx, client, bucket, prefix, camera, from, minTime(to, horizon.Add(24*time.Hour)))
	if err != nil {
		if len(segs) > 0 {
			s.log.Warn().Err(err).Str("camera", camera).Msg("cannot list the bucket for footage the catalog has pruned; exporting what the catalog lists")
			return segs, gaps, nil
		}
		return nil, nil, fmt.Errorf("list footage older than the catalog keeps: %w", err)
	}
	listed = append(listed, s.listElsewhere(ctx, client, bucket, prefix, camera, from, minTime(to, horizon.Add(24*time.Hour)))...)
	known := make(map[string]bool, len(segs))
	for _, sg := range segs {
		known[cmp.Or(sg.Bucket, bucket)+"/"+sg.Key] = true
	}
	for _, sg := range listed {
		if !known[sg.Bucket+"/"+sg.Key] {
			known[sg.Bucket+"/"+sg.Key] = true
			segs = append(segs, sg)
		}
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].Start.Before(segs[j].Start) })
	return segs, gaps, nil
}

// listElsewhere lists the camera's segments in [from, to) under every
// location the catalog has uploaded to other than the configured one
// (bucket, prefix). A location that cannot be listed (a bucket since
// removed) is passed over, logged.
func (s *Service) listElsewhere(ctx context.Context, client S3API, bucket, prefix, camera string, from, to time.Time) []Segment {
	if s.deps.Locations == nil {
		return nil
	}
	locs, err := s.deps.Locations(ctx)
	if err != nil {
		s.log.Warn().Err(err).Msg("cannot read where the catalog has uploaded to; listing the configured bucket and s3Path only")
		return nil
	}
	var out []Segment
	for _, l := range locs {
		if l.Bucket == bucket && l.Prefix == strings.Trim(prefix, "/") {
			continue
		}
		segs, err := ListBucket(ctx, client, l.Bucket, l.Prefix, camera, from, to)
		if err != nil {
			s.log.Warn().Err(err).Str("camera", camera).Str("bucket", l.Bucket).Str("prefix", l.Prefix).
				Msg("cannot list a bucket cctvd uploaded to before for footage the catalog has pruned; passing over it")
			continue
		}
		out = append(out, segs...)
	}
	return out
}

// Spans returns the camera's footage in [from, to): spans and gaps.
func (s *Service) Spans(ctx context.Context, camera string, from, to time.Time) (Timeline, error) {
	segs, gaps, err := s.sources(ctx, camera, from, to)
	if err != nil {
		return Timeline{}, err
	}
	return Spans(camera, segs, gaps, from, to), nil
}

// ErrBusy says that as many clips as may be built at once are being built:
// try again in a moment.
var ErrBusy = errors.New("export: other clips are being built; try again in a moment")

// Clip returns the clip of the camera's footage in [from, to), building
// it or sharing one being built or ready. A range without footage is a
// *NoFootageError naming the nearest footage. Close the clip when done.
func (s *Service) Clip(ctx context.Context, camera string, from, to time.Time) (*Clip, error) {
	return s.ClipCutFeed(ctx, camera, from, to, nil, FeedBest)
}

// ClipCut is Clip cut to cut's windows (nil: the whole range): the clip
// plays the footage of each window, one after the other.
func (s *Service) ClipCut(ctx context.Context, camera string, from, to time.Time, cut *ManifestWindows) (*Clip, error) {
	return s.ClipCutFeed(ctx, camera, from, to, cut, FeedBest)
}

// ClipFeed is Clip of one feed (FeedMain, FeedSub), or of the best copy
// (FeedBest): a *MixedError when that is of both feeds (feeds.go).
func (s *Service) ClipFeed(ctx context.Context, camera string, from, to time.Time, feed string) (*Clip, error) {
	return s.ClipCutFeed(ctx, camera, from, to, nil, feed)
}

// ClipCutFeed is ClipCut of one feed, or of the best copy (ClipFeed).
func (s *Service) ClipCutFeed(ctx context.Context, camera string, from, to time.Time, cut *ManifestWindows, feed string) (*Clip, error) {
	from, to = millis(from), millis(to)
	segs, gaps, err := s.sources(ctx, camera, from, to)
	if err != nil {
		return nil, err
	}
	segs, feed, note, err := SelectFeed(segs, from, to, feed)
	if err != nil {
		return nil, err
	}
	var key strings.Builder // the range, the feed and the state of its sources
	fmt.Fprintf(&key, "%s|%d|%d|%s", camera, from.UnixNano(), to.UnixNano(), feed)
	var windows []Range
	if cut != nil {
		windows = cut.Windows
		fmt.Fprintf(&key, "|cut %s %v", cut.By, cut.PadSeconds)
		for _, w := range windows {
			fmt.Fprintf(&key, "|%d-%d", w.From.UnixNano(), w.To.UnixNano())
		}
	}
	for _, sg := range segs {
		if sg.available() {
			fmt.Fprintf(&key, "|%s:%d:%t:%t", sg.Name, sg.Bytes, sg.Path != "", sg.Uploaded)
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("export: shutting down")
	}
	e, ok := s.clips[key.String()]
	if ok && e.failedLocked() { // a source did not match: build again, from S3
		delete(s.clips, key.String())
		ok = false
	}
	if !ok && s.building >= s.cfg.MaxBuilds {
		s.mu.Unlock()
		return nil, ErrBusy
	}
	if !ok {
		s.building++
		e = &entry{ready: make(chan struct{})}
		s.clips[key.String()] = e
		b := &Builder{S3: s.s3, Bucket: s.bucket, Prefix: s.prefix, Locations: s.deps.Locations, Temp: s.cfg.Temp, Version: s.cfg.Version,
			Log: s.log, Now: s.deps.Now, Distrust: &s.distrust}
		// The build is not the request's: a player that gives up on the
		// first request comes back with a Range request.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.BuildTimeout)
		go func() {
			defer cancel()
			start := time.Now()
			e.err = recovered(s.log, "build", func() error {
				var err error
				e.clip, err = b.Build(bctx, Request{Camera: camera, From: from, To: to, Segments: segs, Gaps: gaps, Made: MadeOnBox,
					Windows: windows, Cut: cut, Feed: feed, FeedNote: note})
				var nf *NoFootageError
				if errors.As(err, &nf) {
					err = Nearest(bctx, s.deps.Catalog, camera, from, to)
					if near, ok := err.(*NoFootageError); ok {
						near.Damaged = nf.Damaged
					}
				}
				return err
			})
			if e.err != nil && e.clip != nil { // a panic after the clip was made
				e.clip.Close()
				e.clip = nil
			}
			if e.err == nil {
				s.log.Info().Str("camera", camera).Time("from", from).Time("to", to).Int64("bytes", e.clip.Size()).
					Dur("took", time.Since(start)).Msg("export ready")
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			// Ready once the books say so: whoever the clip wakes finds the
			// build counted out, and a failed one gone from clips.
			defer close(e.ready)
			s.building--
			switch {
			case e.err != nil:
				if s.clips[key.String()] == e {
					delete(s.clips, key.String())
				}
			case e.refs == 0: // every requester gave up while it was built
				s.idleLocked(key.String(), e)
			}
		}()
	}
	e.refs++
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	s.mu.Unlock()

	select {
	case <-e.ready:
	case <-ctx.Done():
		s.unref(key.String(), e)
		return nil, ctx.Err()
	}
	if e.err != nil {
		s.unref(key.String(), e)
		return nil, e.err
	}
	return &Clip{built: e.clip.built, release: func() { s.unref(key.String(), e) }}, nil
}

// failedLocked says whether a ready clip found a source not matching.
func (e *entry) failedLocked() bool {
	select {
	case <-e.ready:
		return e.err == nil && e.clip.failed.Load()
	default:
		return false
	}
}

// unref drops a reference; the last one to a ready clip starts the keep
// timer (the build starts it for a clip all gave up on).
func (s *Service) unref(key string, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.refs--
	if e.refs > 0 {
		return
	}
	select {
	case <-e.ready:
		if e.err == nil {
			s.idleLocked(key, e)
		}
	default:
	}
}

// idleLocked keeps an unused ready clip for cfg.Keep, then evicts it.
func (s *Service) idleLocked(key string, e *entry) {
	if s.closed {
		s.evictLocked(key, e)
		return
	}
	e.timer = time.AfterFunc(s.cfg.Keep, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if e.refs == 0 {
			s.evictLocked(key, e)
		}
	})
}

func (s *Service) evictLocked(key string, e *entry) {
	if s.clips[key] == e {
		delete(s.clips, key)
	}
	if e.clip != nil {
		e.clip.Close()
	}
}

// Close releases every clip no one reads; those being read are released
// by their last reader.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for key, e := range s.clips {
		if e.timer != nil { // ready and unused
			e.timer.Stop()
			s.evictLocked(key, e)
		}
	}
}
