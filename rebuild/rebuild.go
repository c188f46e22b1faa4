// Package rebuild fills a new catalog with what S3 holds, after the old one
// was lost or found corrupt, so that the catalog again knows all footage.
//
// The disk part of a rebuild is the catalog's own Reconcile, which gives
// every local file a row that the uploader checks against S3 before it
// uploads anything (a file S3 holds with the same size and sha256 counts as
// uploaded and is not sent again). This package does the S3 part: it lists
// the bucket under s3Path, one page at a time, and gives each object of a
// segment whose local file is gone (clearAfterUpload, retention) a row,
// uploaded and deleted locally, with its size, sha256 and times from the
// object's metadata; a row not uploaded whose file is gone is marked
// uploaded when S3 holds the same bytes.
//
// It runs in the background in constant memory: a page of keys at a time,
// a HEAD per object it imports, one transaction per page that also saves
// the listing's position in the catalog, so a restart resumes where it
// stopped. While S3 is down it waits, with a backoff, and says so once.
package rebuild

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/watch"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// StateKey is where the catalog keeps a rebuild's position: present while
// a rebuild is due or under way, its value the last key done ("" before
// the first page).
const StateKey = "rebuild-s3"

// S3 is what a rebuild needs of an S3 client (*s3.Client has it).
type S3 interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// Catalog is what a rebuild needs of the catalog.
type Catalog interface {
	State(ctx context.Context, key string) (string, bool, error)
	SetState(ctx context.Context, key, value string) error
	DeleteState(ctx context.Context, key string) error
	RowStates(ctx context.Context, rels []string) (map[string]catalog.RowState, error)
	ImportRemote(ctx context.Context, objs []catalog.RemoteObject, stateKey, cursor string) (catalog.ImportResult, error)
	ImportActivity(ctx context.Context, acts []catalog.SegmentActivity) error
}

// Request marks a catalog for a rebuild from S3, from the start of the
// listing. Call it when the catalog was created new.
func Request(ctx context.Context, cat Catalog) error {
	return cat.SetState(ctx, StateKey, "")
}

// Config is a rebuild's configuration.
type Config struct {
	Bucket string
	// Prefix is s3Path: keys are Prefix/<camera>/<day>/<file>.
	Prefix string
	// KeepDays: objects of segments that started more than this many days
	// ago are not imported (the catalog would prune them at once). 0: all.
	KeepDays int
	// PageSize is how many keys one listing returns. Default 1000.
	PageSize int32
	// HeadConcurrency is how many HEADs run at once. Default 4.
	HeadConcurrency int
	// RetryInitial and RetryMax bound the wait while S3 fails. Defaults
	// 1s and 5min.
	RetryInitial, RetryMax time.Duration
}

func (c *Config) setDefaults() {
	if c.PageSize <= 0 {
		c.PageSize = 1000
	}
	if c.HeadConcurrency <= 0 {
		c.HeadConcurrency = 4
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
}

// Deps are a rebuild's collaborators.
type Deps struct {
	Log     zerolog.Logger
	S3      S3
	Catalog Catalog
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// After waits on the monotonic clock; time.After by default.
	After func(time.Duration) <-chan time.Time
}

// State is where a rebuild is.
type State string

// The rebuild states.
const (
	Idle     State = "idle"     // no rebuild due
	Running  State = "running"  // listing and importing
	Waiting  State = "waiting"  // S3 failed; retrying after a pause
	Finished State = "finished" // the bucket was listed to its end
)

// Status is a rebuild's progress, for the API.
type Status struct {
	State State `json:"state"`
	// Listed counts the keys listed, Added the rows created for objects
	// whose local file is gone, Confirmed the rows found uploaded.
	Listed    int64     `json:"listed"`
	Added     int64     `json:"added"`
	Confirmed int64     `json:"confirmed"`
	LastError string    `json:"lastError,omitempty"`
	Since     time.Time `json:"since,omitzero"`
}

// Rebuilder runs one catalog's rebuild from S3.
type Rebuilder struct {
	cfg    Config
	deps   Deps
	log    zerolog.Logger
	status *watch.Value[Status]
}

// New returns a Rebuilder.
func New(cfg Config, deps Deps) *Rebuilder {
	cfg.setDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.After == nil {
		deps.After = time.After
	}
	return &Rebuilder{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "rebuild").Logger(),
		status: watch.New(Status{State: Idle})}
}

// Status returns the rebuild's progress.
func (r *Rebuilder) Status() Status { return r.status.Get() }

// WaitFor returns once cond holds for the status, or ctx ends.
func (r *Rebuilder) WaitFor(ctx context.Context, cond func(Status) bool) error {
	return r.status.WaitFor(ctx, cond)
}

func (r *Rebuilder) setState(s State, lastError string) {
	r.status.Update(func(st *Status) {
		if st.State != s {
			st.Since = r.deps.Now()
		}
		st.State, st.LastError = s, lastError
	})
}

// Run rebuilds, if the catalog asks for it, until the bucket is listed to
// its end or ctx ends; S3 failures are waited out. It returns nil either
// way: only ctx stops it.
func (r *Rebuilder) Run(ctx context.Context) error {
	cursor, due, err := r.deps.Catalog.State(ctx, StateKey)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error().Err(err).Msg("cannot read whether the catalog needs a rebuild from S3")
		}
		return nil
	}
	if !due {
		return nil
	}
	r.log.Info().Str("bucket", r.cfg.Bucket).Str("prefix", r.cfg.Prefix).Str("from", cursor).
		Msg("rebuilding the catalog from S3: every object whose local file is gone gets a row")
	r.setState(Running, "")
	pause := r.cfg.RetryInitial
	failing := false
	for {
		next, done, err := r.page(ctx, cursor)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// Once per outage, not once per retry (each error message
			// differs, by its request id if nothing else).
			if failing {
				r.log.Debug().Err(err).Dur("retryIn", pause).Msg("rebuild from S3: failed again")
			} else {
				r.log.Warn().Err(err).Dur("retryIn", pause).Msg("rebuild from S3 paused: S3 or the catalog failed; retrying")
			}
			failing = true
			r.setState(Waiting, err.Error())
			select {
			case <-ctx.Done():
				return nil
			case <-r.deps.After(pause):
			}
			pause = min(pause*2, r.cfg.RetryMax)
			continue
		}
		if failing {
			r.log.Info().Msg("rebuild from S3 resumed")
			failing = false
		}
		pause = r.cfg.RetryInitial
		r.setState(Running, "")
		if done {
			if err := r.deps.Catalog.DeleteState(ctx, StateKey); err != nil {
				r.log.Error().Err(err).Msg("cannot record the end of the rebuild; it will run again at the next start")
			}
			st := r.Status()
			r.log.Info().Int64("listed", st.Listed).Int64("added", st.Added).Int64("confirmed", st.Confirmed).
				Msg("catalog rebuilt from S3")
			r.setState(Finished, "")
			return nil
		}
		cursor = next
	}
}

// candidate is a listed key that names a segment.
type candidate struct {
	key, rel string
	info     segment.Info
	size     int64
	etag     string
	modified time.Time
}

// listPrefix is the prefix every key of a segment starts with.
func (r *Rebuilder) listPrefix() string {
	if r.cfg.Prefix == "" {
		return ""
	}
	return r.cfg.Prefix + "/"
}

// page lists one page after cursor, imports what it must, and returns the
// new cursor and whether the listing is at its end.
func (r *Rebuilder) page(ctx context.Context, cursor string) (string, bool, error) {
	prefix := r.listPrefix()
	in := &s3.ListObjectsV2Input{Bucket: aws.String(r.cfg.Bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(r.cfg.PageSize)}
	if cursor != "" {
		in.StartAfter = aws.String(cursor)
	}
	out, err := r.deps.S3.ListObjectsV2(ctx, in)
	if err != nil {
		return "", false, fmt.Errorf("list s3://%s/%s: %w", r.cfg.Bucket, prefix, err)
	}
	var cutoff time.Time
	if r.cfg.KeepDays > 0 {
		cutoff = r.deps.Now().Add(-time.Duration(r.cfg.KeepDays) * 24 * time.Hour)
	}
	var cands []candidate
	var rels []string
	next := cursor
	for _, o := range out.Contents {
		key := aws.ToString(o.Key)
		next = key
		c, ok := parseKey(key, prefix)
		if !ok || aws.ToInt64(o.Size) == 0 || (!cutoff.IsZero() && c.info.Start.Before(cutoff)) {
			continue // not a segment, empty (no footage), or older than the catalog keeps
		}
		c.size, c.etag, c.modified = aws.ToInt64(o.Size), aws.ToString(o.ETag), aws.ToTime(o.LastModified)
		cands = append(cands, c)
		rels = append(rels, c.rel)
	}
	known, err := r.deps.Catalog.RowStates(ctx, rels)
	if err != nil {
		return "", false, err
	}
	var todo []candidate
	for _, c := range cands {
		k, ok := known[c.rel]
		if ok && (k.Upload == catalog.Uploaded || k.Local == catalog.Present) {
			continue // known uploaded, or the uploader's to check (it is on disk)
		}
		todo = append(todo, c)
	}
	objs, acts, err := r.head(ctx, todo)
	if err != nil {
		return "", false, err
	}
	// The activity first, by path: the rows it belongs to come with the
	// page's position, so a page cut short is done again whole.
	if err := r.deps.Catalog.ImportActivity(ctx, acts); err != nil {
		return "", false, err
	}
	res, err := r.deps.Catalog.ImportRemote(ctx, objs, StateKey, next)
	if err != nil {
		return "", false, err
	}
	r.status.Update(func(st *Status) {
		st.Listed += int64(len(out.Contents))
		st.Added += int64(res.Added)
		st.Confirmed += int64(res.Confirmed)
	})
	return next, !aws.ToBool(out.IsTruncated), nil
}

// parseKey reads prefix<camera>/<day>/<name> with name a segment of that
// camera that starts on that day.
func parseKey(key, prefix string) (candidate, bool) {
	rel, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return candidate{}, false
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 3 {
		return candidate{}, false
	}
	info, err := segment.Parse(parts[2])
	if err != nil || info.Camera != parts[0] || path.Dir(rel) != layout.DayRel(info.Camera, info.Start) {
		return candidate{}, false
	}
	return candidate{key: key, rel: rel, info: info}, true
}

// head reads each candidate's metadata, a few at a time, in order, and
// the activity of those that carry it.
func (r *Rebuilder) head(ctx context.Context, cands []candidate) ([]catalog.RemoteObject, []catalog.SegmentActivity, error) {
	objs := make([]catalog.RemoteObject, len(cands))
	acts := make([]*catalog.SegmentActivity, len(cands))
	found := make([]bool, len(cands))
	errs := make([]error, len(cands))
	sem := make(chan struct{}, r.cfg.HeadConcurrency)
	var wg sync.WaitGroup
	for i, c := range cands {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			objs[i], acts[i], found[i], errs[i] = r.headOne(ctx, c)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	out := objs[:0]
	var outActs []catalog.SegmentActivity
	for i, o := range objs {
		if found[i] {
			out = append(out, o)
			if acts[i] != nil {
				outActs = append(outActs, *acts[i])
			}
		}
	}
	return out, outActs, nil
}

func (r *Rebuilder) headOne(ctx context.Context, c candidate) (catalog.RemoteObject, *catalog.SegmentActivity, bool, error) {
	h, err := r.deps.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(r.cfg.Bucket), Key: aws.String(c.key)})
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return catalog.RemoteObject{}, nil, false, nil // deleted since it was listed
	}
	if err != nil {
		return catalog.RemoteObject{}, nil, false, fmt.Errorf("head %s: %w", c.key, err)
	}
	o := catalog.RemoteObject{Bucket: r.cfg.Bucket, Key: c.key, Rel: c.rel, Info: c.info, Bytes: aws.ToInt64(h.ContentLength),
		SHA256: h.Metadata[uploader.MetaSHA256], ETag: aws.ToString(h.ETag), LastModified: aws.ToTime(h.LastModified)}
	if o.LastModified.IsZero() {
		o.LastModified = c.modified
	}
	// The metadata's times are to the millisecond; the name's to the second.
	if t, err := time.Parse(uploader.MetaTimeLayout, h.Metadata[uploader.MetaStart]); err == nil {
		o.Info.Start = t
	}
	if t, err := time.Parse(uploader.MetaTimeLayout, h.Metadata[uploader.MetaEnd]); err == nil {
		o.Info.End = t
	}
	if id := h.Metadata[uploader.MetaFeedID]; id != "" {
		o.Info.FeedID = id
	}
	var act *catalog.SegmentActivity
	if v := h.Metadata[uploader.MetaActivity]; v != "" {
		sum, err := activity.ParseMeta(v, h.Metadata[uploader.MetaActivityHeatmap])
		if err != nil {
			r.log.Warn().Err(err).Str("key", c.key).Msg("the object's activity metadata is unreadable: its segment is imported without it")
		} else {
			act = &catalog.SegmentActivity{Rel: c.rel, Camera: o.Info.Camera, Start: o.Info.Start, End: o.Info.End, Summary: sum}
		}
	}
	return o, act, true, nil
}
