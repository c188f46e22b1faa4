// Package uploader ships every closed segment to S3, oldest (or newest) first, and
// only counts it uploaded once S3 has it verified.
//
// The queue is the catalog: a segment is pending until an attempt succeeds.
// A failed attempt puts it back with its own backoff (1s doubling to 5min),
// and a failure of S3 itself (unreachable, wrong credentials, no bucket)
// also pauses the whole queue with a backoff, so a long outage never spins.
// Both are kept in memory on the monotonic clock: a wall clock stepped back
// cannot stall them, and after a restart everything pending is due at once.
//
// Nothing damaged goes up: a file that is empty, shorter than when it
// closed, not an MP4, with zeros where its video should be, a bare header,
// or (for files cctvd did not see close: rows rebuilt from the disk,
// salvaged segments) without one frame ffprobe decodes is moved to
// savePath/.quarantine/<camera>/ instead, and its interval reported as a
// gap unless S3 keeps an earlier upload of it. The decode runs in a lane
// of its own, never in an upload slot (decode.go): a checker that hangs or
// dies delays only the files waiting for it, and after DecodeTries such
// failures a file goes up with the cheap check only, flagged so.
//
// Nothing in S3 is overwritten: every write is conditional (If-None-Match:
// *). When S3 already holds the key, a HEAD compares it with the local file:
// the same content (a retry after a lost answer, a rebuilt catalog) counts
// as uploaded without sending it again; different content is kept, and the
// segment goes up beside it as <name>.conflict-<12 hex of its sha256>.mp4,
// logged, counted and recorded in the catalog; if that key holds other
// content too, under the next 12 hex digits of its sha256, up to five names
// (ConflictKeys). A server that does not implement conditional writes (501)
// gets a HEAD before every write instead.
//
// Verification compares a checksum S3 computed from the bytes it received
// with the local file's: SHA-256 of the whole object for a single PutObject,
// the full-object CRC-64/NVME for a multipart upload (every part carrying its
// own CRC, precomputed, so the SDK never falls back to aws-chunked
// trailers). Only a server that keeps no checksums is checked by its ETag
// against the local MD5 (or multipart ETag), which SSE-KMS would break. A
// HEAD then confirms the size and the sha256 metadata.
//
// Over a real uplink: the uploader's connections write through a Limiter
// (limit.go), whose rate a Pacer sets from the cap, the weekly schedule
// and the API (schedule.go); multipart uploads are recorded part by part
// and resume where they stopped (multipart.go), and at start the uploads
// under s3Path no record names are aborted (sweep.go); the queue's order
// is a piece of its own (queue.go), and the plan (plan.go, planner.go)
// says in plain words whether the backlog drains before retention
// reaches it, and leaves segments that cannot make it under a deficit.
package uploader

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/clock"
	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/watch"
)

// Config is the uploader's configuration.
type Config struct {
	Bucket string
	// Prefix is s3Path: keys are Prefix/<camera>/<YYYY-MM-DD>/<file>.
	Prefix string
	// SavePath is the recordings folder; damaged files go to its
	// .quarantine folder.
	SavePath string
	// ProbePath is ffprobe, which decodes the files cctvd did not see close
	// in this run before they go up. Default config.DefaultProbePath.
	ProbePath string
	// Concurrency is how many segments go up at once. Default
	// config.DefaultUploadConcurrency.
	Concurrency int
	// PartSize: files bigger than this go up as multipart uploads in parts
	// of this size. Default config.DefaultPartSizeMB MiB.
	PartSize int64
	// PartConcurrency is how many parts of one file go up at once. Default
	// config.DefaultPartConcurrency.
	PartConcurrency int
	// ClearAfterUpload deletes the local file once S3 has it verified.
	ClearAfterUpload bool
	// ShutdownGrace is how long uploads under way may finish at shutdown
	// before they are cut short (and left to be redone). Default 10s.
	ShutdownGrace time.Duration
	// RetryInitial and RetryMax bound a segment's backoff between attempts,
	// and the pause of the whole queue while S3 fails. Defaults 1s and 5min.
	RetryInitial, RetryMax time.Duration
	// DecodeBudget is how long the decode check of a segment that plays
	// for d and holds bytes may take. Default media.DecodeBudget.
	DecodeBudget func(d time.Duration, bytes int64) time.Duration
	// DecodeTries is how many times a file's decode check may fail to run
	// (ffprobe killed, not done within its budget, not started) before the
	// file goes up with the cheap check only. Default 3.
	DecodeTries int
	// DecodeRetry is the pause before a decode check that could not run is
	// tried again, doubling with each try. Default 1min.
	DecodeRetry time.Duration
	// Order is s3Config.uploadOrder: config.UploadOldest (default) or
	// config.UploadNewest (queue.go).
	Order string
	// Rules reorder the queue's window (queue.go). None by default.
	Rules []Rule
	// Feeds is s3Config.uploadFeeds: which feeds go up when (feeds.go).
	// Default config.UploadFeedsAll.
	Feeds string
}

// setDefaults guards against zero values: the uploader's own timings get
// their defaults here; the settings of the config file get the product's
// (package config).
func (c *Config) setDefaults() {
	if c.ProbePath == "" {
		c.ProbePath = config.DefaultProbePath
	}
	if c.Concurrency <= 0 {
		c.Concurrency = config.DefaultUploadConcurrency
	}
	if c.PartSize <= 0 {
		c.PartSize = config.DefaultPartSizeMB << 20
	}
	if c.PartConcurrency <= 0 {
		c.PartConcurrency = config.DefaultPartConcurrency
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.DecodeBudget == nil {
		c.DecodeBudget = media.DecodeBudget
	}
	if c.DecodeTries <= 0 {
		c.DecodeTries = 3
	}
	if c.DecodeRetry <= 0 {
		c.DecodeRetry = time.Minute
	}
	if c.Order == "" {
		c.Order = config.UploadOldest
	}
}

// Key is the object key of a segment whose path relative to savePath is rel.
func Key(prefix, rel string) string {
	if prefix == "" {
		return rel
	}
	return prefix + "/" + rel
}

// Catalog is what the uploader needs of the catalog.
type Catalog interface {
	Due(ctx context.Context, limit int, skip map[int64]bool) ([]catalog.Record, error)
	StartAttempt(ctx context.Context, id int64) error
	SetSums(ctx context.Context, id int64, sha256, crc64 string) error
	SetUploadID(ctx context.Context, id int64, uploadID string) error
	SetConflict(ctx context.Context, id int64, key string) error
	MarkUploadedTo(ctx context.Context, id int64, bucket, etag, verified string) error
	MarkFailed(ctx context.Context, id int64, msg string, next time.Time) error
	MarkQuarantined(ctx context.Context, id int64, path, why string) error
	Requeue(ctx context.Context, id int64) error
	MarkLocalDeleted(ctx context.Context, id int64, cause string) error
	Interrupted(ctx context.Context) ([]catalog.Record, error)
	Get(ctx context.Context, id int64) (catalog.Record, error)

	// Resume records of multipart uploads (multipart.go).
	StartMultipart(ctx context.Context, m catalog.Multipart) error
	AddPart(ctx context.Context, segmentID int64, p catalog.Part) error
	EndMultipart(ctx context.Context, segmentID int64) error
	MultipartOf(ctx context.Context, segmentID int64) (catalog.Multipart, bool, error)
	Multiparts(ctx context.Context) ([]catalog.Multipart, error)

	// The queue's order and the plan (queue.go).
	DueNewest(ctx context.Context, limit int, skip map[int64]bool) ([]catalog.Record, error)
	Backlog(ctx context.Context) (catalog.Backlog, error)
	Produced(ctx context.Context, since time.Time) ([]catalog.Production, error)
	UploadedPresent(ctx context.Context) (int64, error)
	WaitingBefore(ctx context.Context, start time.Time) (int64, error)

	// The decode lane's queue.
	AwaitDecode(ctx context.Context, id int64) error
	DecodeDue(ctx context.Context, limit int, skip map[int64]bool) ([]catalog.Record, error)
	SetDecoded(ctx context.Context, id int64) error
	DecodeFailedToRun(ctx context.Context, id int64, msg string) (int, error)
	SkipDecode(ctx context.Context, id int64) error
}

// Deps are the uploader's collaborators.
type Deps struct {
	Log      zerolog.Logger
	Catalog  Catalog
	S3       S3API
	Redactor *redact.Redactor
	// Clock is the time; the machine's clock by default.
	Clock Clock
	// OnUploaded, if set, is called after each verified upload.
	OnUploaded func(r catalog.Record, took time.Duration)
	// OnFailed, if set, is called after each failed attempt.
	OnFailed func(r catalog.Record, err error)
	// OnConflict, if set, is called when S3 holds different content under
	// a segment's key: r.ConflictKey is that key (its object is kept) and
	// r.Key where the segment goes instead.
	OnConflict func(r catalog.Record)
	// OnQuarantined, if set, is called when a damaged file was moved to the
	// quarantine instead of going up; offsite says S3 keeps an earlier
	// upload of the segment, so its footage is not lost.
	OnQuarantined func(r catalog.Record, why string, offsite bool)
	// Limiter, if set, is the cap on S3's connections (the client's,
	// ClientConfig.Limiter): while it pauses, no attempt starts, and its
	// meter gives the achieved rate.
	Limiter *Limiter
	// Storage, if set, is retention's view of savePath, for the plan.
	Storage func() StorageView
	// OpenShare, if set, is the share of the coming week the schedule lets
	// the uploads run (Pacer.OpenShare): the achieved rate, measured while
	// they may, is worth that much over the week. Default 1.
	OpenShare func() float64
	// InWindow, if set, says whether the upload schedule's window in force
	// lets uploads run (a window, not paused): the main feeds go up then
	// with s3Config.uploadFeeds sub+schedule (feeds.go).
	InWindow func() bool
}

// State is the uploader's health, as the API shows it.
type State string

// The uploader states.
const (
	Idle      State = "idle"      // nothing to upload
	Uploading State = "uploading" // uploads under way, the last attempt succeeded
	Failing   State = "failing"   // the last attempt failed; LastError says why
)

// Status is the uploader's state for the API.
type Status struct {
	State State     `json:"state"`
	Since time.Time `json:"since"`
	// LastError is why the last attempt failed (secrets masked).
	LastError   string    `json:"lastError,omitempty"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	InFlight    int       `json:"inFlight"`
	// Uploaded and Failures count attempts since the daemon started;
	// VerifyFailures are the failures where S3's copy did not match.
	Uploaded       uint64 `json:"uploaded"`
	Failures       uint64 `json:"failures"`
	VerifyFailures uint64 `json:"verifyFailures"`
	// Conflicts counts segments that went up beside different content S3
	// held under their key; Quarantined, damaged files never uploaded.
	Conflicts   uint64 `json:"conflicts"`
	Quarantined uint64 `json:"quarantined"`
	// Decoding is the segment whose decode check runs now (the decode
	// lane's; the catalog's backlog counts those waiting for one), and
	// DecodeSkipped counts the files that went up with the cheap check
	// only, their checker having failed DecodeTries times.
	Decoding      string `json:"decoding,omitempty"`
	DecodeSkipped uint64 `json:"decodeSkipped"`
	// PausedUntil: after S3 itself failed, no attempt starts before this.
	PausedUntil time.Time `json:"pausedUntil,omitzero"`
	// CapPaused: the upload schedule pauses the uploads now; no attempt
	// starts (those under way wait).
	CapPaused bool `json:"capPaused,omitempty"`
	// AchievedMbps is the achieved upload rate over the last 5 minutes
	// (the time uploads wanted the link), 0 before it is known;
	// RecordedMbps what the cameras record (ProductionWindow).
	AchievedMbps float64 `json:"achievedMbps"`
	RecordedMbps float64 `json:"recordedMbps"`
	// RecordedMbpsByCamera is RecordedMbps per camera.
	RecordedMbpsByCamera map[string]float64 `json:"recordedMbpsByCamera,omitempty"`
	// BacklogBytes and BacklogSeconds are what waits for upload: bytes,
	// seconds of footage.
	BacklogBytes   int64   `json:"backlogBytes"`
	BacklogSeconds float64 `json:"backlogSeconds"`
	// Plan says whether the backlog drains, in plain words.
	Plan Plan `json:"plan"`
	// Feeds is each kind of feed's plan, once a camera records a sub feed
	// (feeds.go).
	Feeds *FeedPlans `json:"feeds,omitempty"`
	// LastSkipped and LastDeletedWaiting name the last segment the plan
	// left and the last one retention deleted while a later one went up.
	LastSkipped        string `json:"lastSkipped,omitempty"`
	LastDeletedWaiting string `json:"lastDeletedWaiting,omitempty"`
	// PartsSent and PartBytesSent count the multipart parts S3 confirmed
	// since the daemon started (a resumed upload sends only its missing
	// parts).
	PartsSent     uint64 `json:"partsSent"`
	PartBytesSent uint64 `json:"partBytesSent"`
}

// Uploader ships segments. Run owns the queue; Status, Notify and
// Reconfigure may be called from anywhere.
type Uploader struct {
	deps  Deps
	clock Clock
	log   zerolog.Logger
	wake  chan struct{}

	setMu  sync.Mutex
	cfg    Config       // under setMu
	s3     S3API        // under setMu
	server *serverState // under setMu: what was learnt of s3's server

	status *watch.Value[Status]
	decode *decoder

	planWake    chan struct{}
	planMu      sync.Mutex
	planIn      PlanInput                // the last plan's input
	deficit     bool                     // the last plan is in deficit
	skipped     map[int64]bool           // left in this deficit episode
	saidDeleted bool                     // a deletion in place of a later upload was logged this episode
	inflight    map[int64]catalog.Record // going up
}

// serverState is what the uploader learnt of one client's server.
type serverState struct {
	noConditional atomic.Bool // it answered 501 to If-None-Match
	noChecksums   atomic.Bool // it answered an upload without a checksum
	weakVerify    atomic.Bool // an upload could be checked by size and metadata only
}

// New returns an Uploader.
func New(cfg Config, deps Deps) *Uploader {
	cfg.setDefaults()
	if deps.Clock == nil {
		deps.Clock = clock.System()
	}
	u := &Uploader{cfg: cfg, s3: deps.S3, server: &serverState{}, deps: deps, clock: deps.Clock,
		log:  deps.Log.With().Str("component", "uploader").Logger(),
		wake: make(chan struct{}, 1), planWake: make(chan struct{}, 1), status: watch.New(Status{State: Idle, Since: deps.Clock.Now()})}
	u.decode = &decoder{u: u, wake: make(chan struct{}, 1)}
	return u
}

// Reconfigure changes the settings (and, if s3 is not nil, the client)
// for the attempts that start from now on.
func (u *Uploader) Reconfigure(cfg Config, s3 S3API) {
	cfg.setDefaults()
	u.setMu.Lock()
	u.cfg = cfg
	if s3 != nil {
		u.s3, u.server = s3, &serverState{}
	}
	u.setMu.Unlock()
	u.Notify()
}

func (u *Uploader) settings() Config {
	u.setMu.Lock()
	defer u.setMu.Unlock()
	return u.cfg
}

func (u *Uploader) attempter() *attempter {
	u.setMu.Lock()
	defer u.setMu.Unlock()
	return &attempter{u: u, cfg: u.cfg, s3: u.s3, server: u.server}
}

// Notify tells the uploader a segment was added. It never blocks.
func (u *Uploader) Notify() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Status returns the uploader's state.
func (u *Uploader) Status() Status { return u.status.Get() }

// WaitFor returns once cond holds for the status, or ctx ends.
func (u *Uploader) WaitFor(ctx context.Context, cond func(Status) bool) error {
	return u.status.WaitFor(ctx, cond)
}

// update changes the status, dates a change of state and wakes waiters.
func (u *Uploader) update(f func(*Status)) {
	u.status.Update(func(s *Status) {
		before := s.State
		f(s)
		if s.State != before {
			s.Since = u.clock.Now()
		}
	})
}

type result struct {
	rec  catalog.Record
	err  error
	took time.Duration
}

// Run uploads until ctx ends, then gives uploads under way ShutdownGrace
// to finish, cuts the rest short (they will be redone) and returns. The
// decode lane runs beside it, and stops at once with ctx.
func (u *Uploader) Run(ctx context.Context) error {
	u.cleanUpInterrupted(ctx)
	decodeDone := make(chan struct{})
	go func() { defer close(decodeDone); u.decode.run(ctx) }()
	defer func() { <-decodeDone }()
	planDone := make(chan struct{})
	go func() { defer close(planDone); u.runPlanner(ctx) }()
	defer func() { <-planDone }()

	// Uploads get their own context: at shutdown they may finish.
	upCtx, upCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer upCancel()
	busy := map[int64]bool{}
	// notBefore: each segment's end of backoff, on the monotonic clock.
	notBefore := map[int64]time.Duration{}
	done := make(chan result)
	cfg := u.settings()
	pause := &backoff.ExponentialBackOff{InitialInterval: cfg.RetryInitial, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: cfg.RetryMax}
	pause.Reset()
	var pausedUntil time.Duration // monotonic; 0: not paused
	paused := false
	launch := func(r catalog.Record) {
		busy[r.ID] = true
		u.setInflight(r, true)
		a := u.attempter()
		go func() {
			start := u.clock.Mono()
			err := a.attempt(upCtx, r)
			done <- result{rec: r, err: err, took: u.clock.Mono() - start}
		}()
	}

	for {
		cfg = u.settings()
		now := u.clock.Mono()
		for id, t := range notBefore {
			if t <= now {
				delete(notBefore, id)
			}
		}
		capPaused := u.capPaused()
		u.setCapPaused(capPaused)
		if free := cfg.Concurrency - len(busy); free > 0 && (!paused || now >= pausedUntil) && !capPaused {
			if paused {
				free = 1 // after a pause, one attempt probes S3 first
			}
			recs, err := u.next(ctx, cfg, free, u.skipSet(busy, notBefore))
			if err != nil && ctx.Err() == nil {
				u.log.Error().Err(err).Msg("cannot read the upload queue")
			}
			for _, r := range recs {
				launch(r)
			}
		}
		u.setInFlight(len(busy))
		if len(busy) == 0 {
			u.idleIfHealthy()
		}
		if lim := u.deps.Limiter; lim != nil {
			// The link is wanted while uploads are under way and may run; a
			// pause of the schedule counts in the plan by its share of the
			// week (Deps.OpenShare), not as a slow link.
			lim.Meter().SetWanting(len(busy) > 0 && !capPaused)
		}

		wait := nextWake(now, pausedUntil, paused, notBefore, len(busy) < cfg.Concurrency)
		var capChanged <-chan struct{}
		if lim := u.deps.Limiter; lim != nil {
			capChanged = lim.Changed()
		}
		select {
		case <-capChanged:
		case <-ctx.Done():
			var more func(free int) []catalog.Record
			if !paused { // S3 answers: the last segments, closed at the stop, may go up in the grace
				more = func(free int) []catalog.Record {
					if u.capPaused() {
						return nil
					}
					recs, err := u.next(context.WithoutCancel(ctx), cfg, free, u.skipSet(busy, notBefore))
					if err != nil {
						u.log.Error().Err(err).Msg("cannot read the upload queue")
					}
					return recs
				}
			}
			u.drain(busy, done, upCancel, cfg, more, launch)
			return nil
		case <-u.wake:
		case <-u.clock.After(wait):
		case res := <-done:
			delete(busy, res.rec.ID)
			u.setInflight(res.rec, false)
			serviceDown, retryIn := u.finish(ctx, res)
			now := u.clock.Mono()
			if retryIn > 0 {
				notBefore[res.rec.ID] = now + retryIn
			}
			if serviceDown {
				d := pause.NextBackOff()
				pausedUntil, paused = now+d, true
				u.setPaused(u.clock.Now().Add(d))
			} else if res.err == nil {
				pause.Reset()
				pausedUntil, paused = 0, false
				u.setPaused(time.Time{})
			}
		}
	}
}

// nextWake is how long the loop may sleep before it must look at the queue
// again without a notification: to the end of a pause, or of the earliest
// backoff. It never sleeps more than a minute, as a safety net.
func nextWake(now, pausedUntil time.Duration, paused bool, notBefore map[int64]time.Duration, canStart bool) time.Duration {
	wait := time.Minute
	switch {
	case paused && now < pausedUntil:
		wait = pausedUntil - now
	case canStart:
		for _, t := range notBefore {
			wait = min(wait, t-now)
		}
	}
	return max(wait, 10*time.Millisecond)
}

// drain is the uploader's stop. Uploads under way get ShutdownGrace to
// finish; while S3 answers (more is not nil) and the grace lasts, segments
// still waiting start too, so that the segments the stop itself closed (the
// daemon stops the cameras, then the uploader) reach S3 before a planned
// power-off. At the end of the grace what is under way is cut short:
// aborted and put back in the queue for the next start.
func (u *Uploader) drain(busy map[int64]bool, done chan result, cancel context.CancelFunc, cfg Config,
	more func(free int) []catalog.Record, launch func(catalog.Record)) {
	grace := time.After(cfg.ShutdownGrace) // a real bound on the shutdown, whatever the clock
	fill := func() {
		if more == nil || grace == nil {
			return
		}
		if free := cfg.Concurrency - len(busy); free > 0 {
			for _, r := range more(free) {
				launch(r)
			}
		}
	}
	fill()
	if len(busy) > 0 {
		u.log.Info().Int("uploads", len(busy)).Dur("grace", cfg.ShutdownGrace).Msg("finishing uploads before stopping")
	}
	for len(busy) > 0 {
		select {
		case res := <-done:
			delete(busy, res.rec.ID)
			u.setInflight(res.rec, false)
			u.finish(context.Background(), res)
			if res.err != nil && !errors.Is(res.err, errAwaitDecode) {
				more = nil // S3 or this file fails: start no more now
			}
			fill()
		case <-grace:
			cancel() // cut short: each is aborted and requeued
			grace = nil
		}
	}
}

// finish records an attempt's result. It reports whether S3 itself failed,
// which pauses the queue, and how long the segment waits before its next
// attempt (0: it need not wait).
func (u *Uploader) finish(ctx context.Context, res result) (serviceDown bool, retryIn time.Duration) {
	ctx = context.WithoutCancel(ctx) // record results even while stopping
	r := res.rec
	if res.err == nil {
		var recovered bool
		u.update(func(s *Status) {
			recovered = s.State == Failing
			s.Uploaded++
			s.LastSuccess = u.clock.Now()
			s.State, s.LastError = Uploading, ""
		})
		if recovered {
			u.log.Info().Msg("S3 uploads work again")
		}
		if u.deps.OnUploaded != nil {
			u.deps.OnUploaded(r, res.took)
		}
		return false, 0
	}
	if errors.Is(res.err, errQuarantined) { // recorded and reported by the attempt
		return false, 0
	}
	if errors.Is(res.err, errAwaitDecode) { // handed to the decode lane
		u.decode.notify()
		return false, 0
	}
	if isCanceled(res.err) {
		if err := u.deps.Catalog.Requeue(ctx, r.ID); err != nil {
			u.log.Error().Err(err).Msg("cannot requeue an interrupted upload")
		}
		return false, 0
	}
	cfg := u.settings()
	msg, service := classify(res.err, cfg.Bucket)
	msg = u.deps.Redactor.String(msg)
	retryIn = retryDelay(r.Attempts+1, cfg.RetryInitial, cfg.RetryMax)
	// The catalog gets the wall-clock time for people to read; the schedule
	// itself is the caller's, on the monotonic clock.
	if err := u.deps.Catalog.MarkFailed(ctx, r.ID, msg, u.clock.Now().Add(retryIn)); err != nil {
		u.log.Error().Err(err).Msg("cannot record a failed upload")
	}
	var changed bool
	u.update(func(s *Status) {
		changed = s.LastError != msg
		s.Failures++
		if errors.Is(res.err, ErrVerify) {
			s.VerifyFailures++
		}
		s.State, s.LastError = Failing, msg
	})
	if changed { // once per change, not once per retry
		u.log.Warn().Str("segment", r.Name()).Str("error", msg).Msg("upload failed")
	} else {
		u.log.Debug().Str("segment", r.Name()).Str("error", msg).Msg("upload failed again")
	}
	if u.deps.OnFailed != nil {
		u.deps.OnFailed(r, res.err)
	}
	return service, retryIn
}

func (u *Uploader) setInFlight(n int) {
	if u.status.Get().InFlight != n { // only this loop changes it
		u.update(func(s *Status) { s.InFlight = n })
	}
}

func (u *Uploader) setPaused(t time.Time) { u.update(func(s *Status) { s.PausedUntil = t }) }

func (u *Uploader) setCapPaused(p bool) {
	if u.status.Get().CapPaused != p {
		u.update(func(s *Status) { s.CapPaused = p })
	}
}

// skipSet is what the queue leaves out now: uploads under way, segments
// in their backoff, and those the deficit left.
func (u *Uploader) skipSet(busy map[int64]bool, notBefore map[int64]time.Duration) map[int64]bool {
	skip := make(map[int64]bool, len(busy)+len(notBefore))
	for id := range busy {
		skip[id] = true
	}
	for id := range notBefore {
		skip[id] = true
	}
	u.skippedIDs(skip)
	return skip
}

func (u *Uploader) idleIfHealthy() {
	if u.status.Get().State == Uploading { // only Run's goroutine changes the state
		u.update(func(s *Status) { s.State = Idle })
	}
}

// conflicted counts and reports a segment diverted beside different content.
func (u *Uploader) conflicted(r catalog.Record) {
	if u.deps.OnConflict != nil {
		u.deps.OnConflict(r)
	}
	u.update(func(s *Status) { s.Conflicts++ }) // after the report: who waits on the count finds it reported
}

// quarantined counts and reports a damaged file moved to the quarantine.
func (u *Uploader) quarantined(r catalog.Record, why string, offsite bool) {
	if u.deps.OnQuarantined != nil {
		u.deps.OnQuarantined(r, why, offsite)
	}
	u.update(func(s *Status) { s.Quarantined++ }) // after the report, as above
}

// retryDelay is a segment's pause before attempt n+1 after n failures:
// initial doubling up to max, with ±20% jitter. (The backoff package keeps
// this state in memory; here it lives in the catalog as an attempt count.)
func retryDelay(attempts int, initial, maxDelay time.Duration) time.Duration {
	d := maxDelay
	if attempts <= 30 {
		d = min(initial<<max(attempts-1, 0), maxDelay)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
