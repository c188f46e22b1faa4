// Package uploader ships every closed segment to S3, oldest first, and
// only counts it uploaded once S3 has it verified.
//
// The queue is the catalog: a segment is pending until an attempt succeeds;
// a failed attempt puts it back with its own backoff (1s doubling to 5min),
// and a failure of S3 itself (unreachable, wrong credentials, no bucket)
// also pauses the whole queue with a backoff, so a long outage never spins.
// Nothing local is deleted here except, with clearAfterUpload, a file S3 has
// verified.
//
// Small files go up in one PutObject with Content-MD5, the open file as the
// body; files of a part size or more go up as multipart uploads through the
// SDK's upload manager, which sends parts straight from the file. Either
// way the result is verified: the ETag against the MD5 (or the multipart
// ETag) computed locally, then a HEAD for the size and the sha256 in the
// object's metadata. A multipart upload's id is kept in the catalog the
// moment S3 gives it, so one cut short by a crash is aborted at the next
// start and no orphan parts stay on the server.
package uploader

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/watch"
)

// Config is the uploader's configuration.
type Config struct {
	Bucket string
	// Prefix is s3Path: keys are Prefix/<camera>/<YYYY-MM-DD>/<file>.
	Prefix string
	// Concurrency is how many segments go up at once. Default 2.
	Concurrency int
	// PartSize: files this big or bigger go up as multipart uploads in
	// parts of this size. Default 16 MiB.
	PartSize int64
	// PartConcurrency is how many parts of one file go up at once. Default 4.
	PartConcurrency int
	// ClearAfterUpload deletes the local file once S3 has it verified.
	ClearAfterUpload bool
	// ShutdownGrace is how long uploads under way may finish at shutdown
	// before they are cut short (and left to be redone). Default 10s.
	ShutdownGrace time.Duration
	// RetryInitial and RetryMax bound a segment's backoff between attempts,
	// and the pause of the whole queue while S3 fails. Defaults 1s and 5min.
	RetryInitial, RetryMax time.Duration
}

func (c *Config) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if c.PartSize <= 0 {
		c.PartSize = 16 << 20
	}
	if c.PartConcurrency <= 0 {
		c.PartConcurrency = 4
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
	Due(ctx context.Context, now time.Time, limit int, busy map[int64]bool) ([]catalog.Record, error)
	NextDue(ctx context.Context) (time.Time, bool, error)
	StartAttempt(ctx context.Context, id int64) error
	SetChecksums(ctx context.Context, id int64, sha256, md5 string) error
	SetUploadID(ctx context.Context, id int64, uploadID string) error
	MarkUploaded(ctx context.Context, id int64, etag string) error
	MarkFailed(ctx context.Context, id int64, msg string, next time.Time) error
	Requeue(ctx context.Context, id int64) error
	MarkLocalDeleted(ctx context.Context, id int64, cause string) error
	Interrupted(ctx context.Context) ([]catalog.Record, error)
}

// Deps are the uploader's collaborators.
type Deps struct {
	Log      zerolog.Logger
	Catalog  Catalog
	S3       S3API
	Redactor *redact.Redactor
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// OnUploaded, if set, is called after each verified upload.
	OnUploaded func(r catalog.Record, took time.Duration)
	// OnFailed, if set, is called after each failed attempt.
	OnFailed func(r catalog.Record, err error)
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
	// Uploaded and Failures count attempts since the daemon started.
	Uploaded uint64 `json:"uploaded"`
	Failures uint64 `json:"failures"`
	// PausedUntil: after S3 itself failed, no attempt starts before this.
	PausedUntil time.Time `json:"pausedUntil,omitzero"`
}

// Uploader ships segments. Run owns the queue; Status, Notify and
// Reconfigure may be called from anywhere.
type Uploader struct {
	deps Deps
	log  zerolog.Logger
	wake chan struct{}

	setMu sync.Mutex
	cfg   Config // under setMu
	s3    S3API  // under setMu

	status *watch.Value[Status]
}

// New returns an Uploader.
func New(cfg Config, deps Deps) *Uploader {
	cfg.setDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Uploader{cfg: cfg, s3: deps.S3, deps: deps, log: deps.Log.With().Str("component", "uploader").Logger(),
		wake: make(chan struct{}, 1), status: watch.New(Status{State: Idle, Since: deps.Now()})}
}

// Reconfigure changes the settings (and, if s3 is not nil, the client)
// for the attempts that start from now on.
func (u *Uploader) Reconfigure(cfg Config, s3 S3API) {
	cfg.setDefaults()
	u.setMu.Lock()
	u.cfg = cfg
	if s3 != nil {
		u.s3 = s3
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
	return &attempter{u: u, cfg: u.cfg, s3: u.s3}
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
			s.Since = u.deps.Now()
		}
	})
}

type result struct {
	rec  catalog.Record
	err  error
	took time.Duration
}

// Run uploads until ctx ends, then gives uploads under way ShutdownGrace
// to finish, cuts the rest short (they will be redone) and returns.
func (u *Uploader) Run(ctx context.Context) error {
	u.cleanUpInterrupted(ctx)

	// Uploads get their own context: at shutdown they may finish.
	upCtx, upCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer upCancel()
	busy := map[int64]bool{}
	done := make(chan result)
	cfg := u.settings()
	pause := &backoff.ExponentialBackOff{InitialInterval: cfg.RetryInitial, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: cfg.RetryMax}
	pause.Reset()
	var pausedUntil time.Time

	for {
		cfg = u.settings()
		now := u.deps.Now()
		if free := cfg.Concurrency - len(busy); free > 0 && !now.Before(pausedUntil) {
			if !pausedUntil.IsZero() {
				free = 1 // after a pause, one attempt probes S3 first
			}
			recs, err := u.deps.Catalog.Due(ctx, now, free, busy)
			if err != nil && ctx.Err() == nil {
				u.log.Error().Err(err).Msg("cannot read the upload queue")
			}
			for _, r := range recs {
				busy[r.ID] = true
				a := u.attempter()
				go func() {
					start := u.deps.Now()
					err := a.attempt(upCtx, r)
					done <- result{rec: r, err: err, took: u.deps.Now().Sub(start)}
				}()
			}
		}
		u.setInFlight(len(busy))
		if len(busy) == 0 {
			u.idleIfHealthy()
		}

		wait := u.nextWake(ctx, pausedUntil, len(busy) < cfg.Concurrency)
		select {
		case <-ctx.Done():
			u.drain(busy, done, upCancel, cfg.ShutdownGrace)
			return nil
		case <-u.wake:
		case <-wait:
		case res := <-done:
			delete(busy, res.rec.ID)
			if u.finish(ctx, res) {
				pausedUntil = u.deps.Now().Add(pause.NextBackOff())
				u.setPaused(pausedUntil)
			} else if res.err == nil {
				pause.Reset()
				pausedUntil = time.Time{}
				u.setPaused(pausedUntil)
			}
		}
	}
}

// nextWake returns a channel that fires when the queue should be looked at
// again without a notification: the end of a pause, or the next segment's
// backoff. It never sleeps more than a minute, as a safety net.
func (u *Uploader) nextWake(ctx context.Context, pausedUntil time.Time, canStart bool) <-chan time.Time {
	now := u.deps.Now()
	wait := time.Minute
	switch {
	case now.Before(pausedUntil):
		wait = pausedUntil.Sub(now)
	case canStart:
		if next, ok, err := u.deps.Catalog.NextDue(ctx); err == nil && ok {
			wait = min(wait, max(next.Sub(now), 0))
		}
	}
	if wait <= 0 {
		wait = 10 * time.Millisecond // due now but not picked: busy rows; look again soon
	}
	return time.After(wait)
}

// drain waits for uploads under way, for ShutdownGrace, then cuts them short.
func (u *Uploader) drain(busy map[int64]bool, done chan result, cancel context.CancelFunc, graceFor time.Duration) {
	if len(busy) > 0 {
		u.log.Info().Int("uploads", len(busy)).Dur("grace", graceFor).Msg("finishing uploads under way")
	}
	grace := time.After(graceFor)
	for len(busy) > 0 {
		select {
		case res := <-done:
			delete(busy, res.rec.ID)
			u.finish(context.Background(), res)
		case <-grace:
			cancel() // cut short: each is aborted and requeued
			grace = nil
		}
	}
}

// finish records an attempt's result. It reports whether S3 itself failed,
// which pauses the queue.
func (u *Uploader) finish(ctx context.Context, res result) (serviceDown bool) {
	ctx = context.WithoutCancel(ctx) // record results even while stopping
	r := res.rec
	if res.err == nil {
		var recovered bool
		u.update(func(s *Status) {
			recovered = s.State == Failing
			s.Uploaded++
			s.LastSuccess = u.deps.Now()
			s.State, s.LastError = Uploading, ""
		})
		if recovered {
			u.log.Info().Msg("S3 uploads work again")
		}
		if u.deps.OnUploaded != nil {
			u.deps.OnUploaded(r, res.took)
		}
		return false
	}
	if isCanceled(res.err) {
		if err := u.deps.Catalog.Requeue(ctx, r.ID); err != nil {
			u.log.Error().Err(err).Msg("cannot requeue an interrupted upload")
		}
		return false
	}
	cfg := u.settings()
	msg, service := classify(res.err, cfg.Bucket)
	msg = u.deps.Redactor.String(msg)
	next := u.deps.Now().Add(retryDelay(r.Attempts+1, cfg.RetryInitial, cfg.RetryMax))
	if err := u.deps.Catalog.MarkFailed(ctx, r.ID, msg, next); err != nil {
		u.log.Error().Err(err).Msg("cannot record a failed upload")
	}
	var changed bool
	u.update(func(s *Status) {
		changed = s.LastError != msg
		s.Failures++
		s.State, s.LastError = Failing, msg
	})
	if changed { // once per change, not once per retry
		u.log.Warn().Str("segment", r.Name()).Msg("upload failed: " + msg)
	} else {
		u.log.Debug().Str("segment", r.Name()).Msg("upload failed again: " + msg)
	}
	if u.deps.OnFailed != nil {
		u.deps.OnFailed(r, res.err)
	}
	return service
}

func (u *Uploader) setInFlight(n int) {
	if u.status.Get().InFlight != n { // only this loop changes it
		u.update(func(s *Status) { s.InFlight = n })
	}
}

func (u *Uploader) setPaused(t time.Time) { u.update(func(s *Status) { s.PausedUntil = t }) }

func (u *Uploader) idleIfHealthy() {
	if u.status.Get().State == Uploading { // only Run's goroutine changes the state
		u.update(func(s *Status) { s.State = Idle })
	}
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
