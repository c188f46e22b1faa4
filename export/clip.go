package export

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/durable"
	"github.com/cctvd/cctvd/internal/mp4"
	"github.com/cctvd/cctvd/segment"
)

// Request is what to export.
type Request struct {
	Camera   string
	From, To time.Time
	// Segments are the candidates (any order; those outside the range or
	// whose footage is gone are left out).
	Segments []Segment
	// Gaps are the gap log's entries, for the causes; nil without a log.
	Gaps []catalog.Gap
	// Made is MadeOnBox or MadeFromBucket.
	Made string
	// Windows, if set, cut the clip to these ranges of [From, To), in
	// order and apart (see Windows); Cut says what chose them.
	Windows []Range
	Cut     *ManifestWindows
	// Feed and FeedNote are what SelectFeed said, for the manifest.
	Feed, FeedNote string
}

// Builder makes clips.
type Builder struct {
	// S3 reads segments not on this box; nil when there is none.
	S3     S3API
	Bucket string
	// Prefix is s3Path, and Locations, if set, every (bucket, prefix) the
	// catalog has uploaded to (catalog.Locations): a source S3 does not
	// hold where its row says is looked for under the same camera/day/file
	// in each, and in Bucket and Prefix.
	Prefix    string
	Locations func(ctx context.Context) ([]catalog.Location, error)
	// Temp is where downloaded segments go (unlinked as soon as they are
	// created), and the free space they must leave there: a build that
	// would cross the floor fails with a *SpaceError, before it downloads
	// when it can tell. Share one among concurrent builds (their
	// reservations add up). Default: os.TempDir() with its filesystem's
	// default floor.
	Temp *TempSpace
	// Version is cctvd's, for the manifest.
	Version string
	// Parallel is how many segments are read at once. Default 4.
	Parallel int
	// Distrust, if set, remembers local files found not to match what was
	// recorded, across builds: their S3 copies are read instead.
	Distrust *Distrust
	Log      zerolog.Logger
	Now      func() time.Time
}

// Build opens the segments of the request, checks them and lays out the
// clip. The clip reads its sources as it is read; Close it when done.
func (b *Builder) Build(ctx context.Context, req Request) (*Clip, error) {
	from, to := millis(req.From), millis(req.To)
	if !from.Before(to) {
		return nil, fmt.Errorf("export: from %s is not before to %s", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	// Names are to the second: a second of slack until the segments' own
	// times are read.
	var cands []Segment
	for _, s := range req.Segments {
		if s.available() && s.End.After(from.Add(-time.Second)) && s.Start.Before(to.Add(time.Second)) {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return nil, &NoFootageError{}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Start.Before(cands[j].Start) })
	space := b.Temp
	if space == nil {
		space = &TempSpace{}
	}
	parallel := cmpOr(b.Parallel, 4)
	f := &fetcher{s3: b.S3, bucket: b.Bucket, prefix: b.Prefix, locations: b.Locations, log: b.Log, distrust: b.Distrust, from: from, to: to, space: space}
	if b.S3 != nil {
		need := estimate(cands, from, to, func(s Segment) bool { return s.Path != "" && !b.Distrust.has(s.Path) })
		release, g, err := space.reserve(need)
		if err != nil {
			return nil, err
		}
		f.reserved = g
		defer release() // what was downloaded is on the filesystem's books now
	}
	opened, bad, err := f.openAll(ctx, cands, parallel)
	if err != nil {
		return nil, err
	}
	var srcs []*source
	for _, s := range opened {
		if s.End.After(from) && s.Start.Before(to) {
			srcs = append(srcs, s)
		} else {
			s.file.Close()
		}
	}
	var damaged []*damagedError
	for _, d := range bad {
		if d.seg.End.After(from) && d.seg.Start.Before(to) {
			damaged = append(damaged, d)
			b.Log.Warn().Err(d.err).Str("segment", d.seg.Name).Msg("export: a segment cannot be read; its time is a gap unless another holds it")
		}
	}
	sort.SliceStable(srcs, func(i, j int) bool { return layoutLess(srcs[i].Segment, srcs[j].Segment) })
	pieces, cov := layOut(segmentsOf(srcs), from, to)
	if len(req.Windows) > 0 {
		if err := checkWindows(req.Windows, from, to); err != nil {
			for _, s := range srcs {
				s.file.Close()
			}
			return nil, err
		}
		if srcs, pieces, cov, err = windowed(srcs, req.Windows); err != nil {
			return nil, err
		}
	}
	clip, err := b.lay(req, from, to, srcs, pieces, cov, damaged)
	if err != nil {
		for _, s := range srcs {
			s.file.Close()
		}
		return nil, err
	}
	return clip, nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// ticks converts a wall-clock duration into timescale units.
func ticks(d time.Duration, timescale uint32) int64 {
	return int64(math.Round(float64(d) * float64(timescale) / float64(time.Second)))
}

// wall is the wall-clock time of a presentation time of src.
func (src *source) wall(pts int64) time.Time {
	ts := float64(src.mp4.Track.Timescale)
	return src.Start.Add(time.Duration(math.Round(float64(pts-src.mp4.PTS(0)) * float64(time.Second) / ts)))
}

// lay cuts the sources (in layout order) to [from, to), each instant
// once (layOut, cutParts), and builds the clip.
func (b *Builder) lay(req Request, from, to time.Time, srcs []*source, pieces []piece, cov []covered, damaged []*damagedError) (*Clip, error) {
	cut, skipped, err := cutParts(from, to, srcs, pieces, cov)
	if err == nil {
		err = checkStored(cut)
	}
	if err != nil {
		return nil, err
	}
	for _, d := range damaged {
		skipped = append(skipped, skip(d.seg, CauseDamaged, noPath(d.err)))
	}
	sort.SliceStable(skipped, func(i, j int) bool { return skipped[i].Start.Before(skipped[j].Start) })
	if len(cut) == 0 {
		e := &NoFootageError{}
		if len(damaged) > 0 {
			e.Damaged = noPath(damaged[0].err)
		}
		return nil, e
	}
	var parts []mp4.Part
	var used []*source
	var join mp4.Join
	for i, p := range cut {
		parts = append(parts, mp4.Part{Seg: p.src.mp4, Source: i, First: p.first, Last: p.last})
		used = append(used, p.src)
	}
	join.Start, join.End = cut[0].startPTS, cut[len(cut)-1].endPTS
	firstSrc, lastSrc := used[0], used[len(used)-1]
	actual := Range{From: firstSrc.Start, To: lastSrc.End}
	lo, hi := from, to
	if n := len(req.Windows); n > 0 {
		lo, hi = req.Windows[0].From, req.Windows[n-1].To
	}
	if lo.After(actual.From) {
		actual.From = lo
	}
	if hi.Before(actual.To) {
		actual.To = hi
	}
	join.Created = actual.From
	join.Parts = parts
	bt := &built{srcs: used, distrust: b.Distrust, log: b.Log}
	bt.ctx, bt.cancel = context.WithCancel(context.Background())
	file, err := mp4.Build(join, sourceReader{bt})
	if errors.Is(err, mp4.ErrMixedFormats) { // checked above; kept for safety
		return nil, fmt.Errorf("%w: %v", ErrFormatChange, err)
	}
	if err != nil {
		bt.cancel()
		return nil, fmt.Errorf("export: %w", err)
	}
	bt.file = file

	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	name := fmt.Sprintf("%s_%s_%s%s", req.Camera, segment.FormatTime(actual.From), segment.FormatTime(actual.To), segment.Ext)
	if req.Feed == FeedSub { // a sub copy says so in its name too
		name = fmt.Sprintf("%s_%s_%s_%s%s", req.Camera, firstSrc.FeedID, segment.FormatTime(actual.From), segment.FormatTime(actual.To), segment.Ext)
	}
	m := Manifest{
		Format: ManifestFormat, Camera: req.Camera, FeedID: firstSrc.FeedID, Feed: req.Feed, FeedNote: req.FeedNote,
		Requested: Range{From: from, To: to}, Actual: actual, DurationSeconds: file.Duration.Seconds(),
		Timeline: TimelineGapsSkipped, Trim: TrimEditList, Overlap: OverlapOnce, Made: req.Made, Bucket: b.Bucket,
		Skipped:      skipped,
		Gaps:         Spans(req.Camera, segmentsOf(used), append(damagedGaps(damaged), req.Gaps...), from, to).Gaps,
		Windows:      req.Cut,
		Export:       ManifestExport{File: name, ContentType: "video/mp4", Bytes: file.Size()},
		CctvdVersion: b.Version, ExportedAt: now().UTC(),
	}
	fp := sha256.New() // what the bytes depend on: sources, cuts, start
	fmt.Fprintf(fp, "%s|%d|%d|%d|", mp4Layout, join.Start, join.End, join.Created.Unix())
	for i, s := range used {
		p := parts[i]
		span := Range{From: s.wall(s.mp4.PTS(p.First)), To: s.wall(s.mp4.PTS(p.Last-1) + int64(s.mp4.Samples[p.Last-1].Duration))}
		if i == 0 {
			span.From = actual.From
		}
		if i == len(parts)-1 && span.To.After(actual.To) {
			span.To = actual.To
		}
		m.Sources = append(m.Sources, ManifestSource{
			Name: s.Name, Key: s.Key, Bucket: otherBucket(s.Bucket, b.Bucket), Uploaded: s.Uploaded, ETag: s.ETag, Bytes: s.bytes, SHA256: s.sha256, Read: s.read,
			Start: s.Start, End: s.End, Used: span, ClipSeconds: file.Offsets[i].Seconds(), Note: s.note, Cut: strings.Join(cut[i].cut, "; "),
		})
		fp.Write([]byte(s.identity()))
		fp.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(p.First)), uint64(p.Last)))
	}
	if len(req.Windows) > 0 { // the time between windows is left out, not missing
		m.Gaps = windowGaps(m.Gaps, req.Windows)
	}
	m.Export.ETag = `"` + hex.EncodeToString(fp.Sum(nil))[:32] + `"`
	bt.manifest = m
	for _, s := range used {
		s.mp4 = nil // the sample tables are in the file's header now
	}
	bt.verifyAhead()
	return newClip(bt), nil
}

// identity names a source's bytes for the entity tag before they are
// hashed: the recorded sha256, else the size and modification time.
func (src *source) identity() string {
	if src.SHA256 != "" {
		return src.SHA256
	}
	if src.sha256 != "" {
		return src.sha256
	}
	var mod int64
	if fi, err := src.file.Stat(); err == nil {
		mod = fi.ModTime().UnixNano()
	}
	return fmt.Sprintf("%s:%d:%d", src.Name, src.bytes, mod)
}

// segmentsOf returns the sources' segments, with the times read from them.
func segmentsOf(srcs []*source) []Segment {
	out := make([]Segment, len(srcs))
	for i, s := range srcs {
		out[i] = s.Segment
	}
	return out
}

// mp4Layout versions the joined file's layout, in the entity tag.
const mp4Layout = "cctvd-mp4/1"

// built is a laid-out clip, shared by its users.
type built struct {
	file     *mp4.File
	srcs     []*source
	manifest Manifest
	distrust *Distrust
	log      zerolog.Logger
	// ctx lives as long as the clip: the checks of local sources run in it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// failed: a source did not match what was recorded; the clip cannot
	// be read whole.
	failed atomic.Bool

	mu  sync.Mutex
	sum string // the clip's sha256, once computed
}

// sourceReader reads a clip's sources, each checked before its first byte.
type sourceReader struct{ b *built }

func (r sourceReader) ReadAt(i int, p []byte, off int64) (int, error) {
	if err := r.b.check(i); err != nil {
		return 0, err
	}
	return r.b.srcs[i].file.ReadAt(p, off)
}

// check checks source i (once); a mismatch is remembered.
func (b *built) check(i int) error {
	src := b.srcs[i]
	err := src.check(b.ctx, b.log)
	if errors.Is(err, ErrMismatch) && !b.failed.Swap(true) {
		b.distrust.add(src.Path)
		b.log.Warn().Err(err).Str("segment", src.Name).Msg("export: a local file does not match what was recorded; the next try reads its S3 copy")
	}
	return err
}

// verifyAhead checks the local sources in the background, in order, two
// at a time, so that a reader going through the clip rarely waits; a
// reader that jumps ahead checks what it reads itself.
func (b *built) verifyAhead() {
	var next atomic.Int64
	for range 2 {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(b.srcs) || b.ctx.Err() != nil || b.failed.Load() {
					return
				}
				_ = b.check(i)
			}
		}()
	}
}

func (b *built) close() {
	b.cancel()
	b.wg.Wait()
	for _, s := range b.srcs {
		s.file.Close()
	}
}

// Clip is an exported MP4, read from its sources as it is read. Its
// methods are safe for concurrent use.
type Clip struct {
	*built
	once    sync.Once
	release func()
}

func newClip(b *built) *Clip { return &Clip{built: b, release: b.close} }

// Close releases the clip: its files are closed (downloaded sources
// vanish) once no one uses them.
func (c *Clip) Close() error {
	c.once.Do(c.release)
	return nil
}

// Size is the clip's length in bytes.
func (c *Clip) Size() int64 { return c.file.Size() }

// ReadAt reads the clip's bytes.
func (c *Clip) ReadAt(p []byte, off int64) (int, error) { return c.file.ReadAt(p, off) }

// Name is the clip's file name: camera_start_end.mp4.
func (c *Clip) Name() string { return c.manifest.Export.File }

// ETag is the clip's HTTP entity tag.
func (c *Clip) ETag() string { return c.manifest.Export.ETag }

// Requested is the range asked for (to the millisecond).
func (c *Clip) Requested() Range { return c.manifest.Requested }

// Duration is how long the clip plays.
func (c *Clip) Duration() time.Duration { return c.file.Duration }

// WriteTo writes the whole clip to w and notes its sha256 for the
// manifest.
func (c *Clip) WriteTo(w io.Writer) (int64, error) {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.NewSectionReader(c.file, 0, c.file.Size()))
	if err != nil {
		return n, err
	}
	c.mu.Lock()
	c.sum = hex.EncodeToString(h.Sum(nil))
	c.mu.Unlock()
	return n, nil
}

// Manifest returns the clip's manifest, hashing the clip the first time
// (that reads all of it: as long as a download from this box).
func (c *Clip) Manifest(ctx context.Context) (Manifest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sum == "" {
		h := sha256.New()
		buf := make([]byte, 1<<20)
		for off := int64(0); off < c.file.Size(); {
			if err := ctx.Err(); err != nil {
				return Manifest{}, err
			}
			n, err := c.file.ReadAt(buf[:min(int64(len(buf)), c.file.Size()-off)], off)
			h.Write(buf[:n])
			off += int64(n)
			if err != nil && !(errors.Is(err, io.EOF) && off == c.file.Size()) {
				return Manifest{}, fmt.Errorf("export: hash the clip: %w", err)
			}
		}
		c.sum = hex.EncodeToString(h.Sum(nil))
	}
	m := c.manifest
	m.Export.SHA256 = c.sum
	m.Sources = append([]ManifestSource(nil), m.Sources...)
	for i, src := range c.srcs { // all checked already: the clip was read whole
		if err := c.check(i); err != nil {
			return Manifest{}, err
		}
		m.Sources[i].SHA256, m.Sources[i].Note = src.sha256, src.note
	}
	return m, nil
}

// ErrExists is returned by Save when a file it would write exists.
var ErrExists = errors.New("exists already")

// Save writes the clip to path and its manifest beside it (ManifestPath),
// each through a temporary file that is synced and renamed into place,
// so neither is ever seen half-written. Existing files are kept unless
// overwrite is set.
func (c *Clip) Save(path string, overwrite bool) (Manifest, error) {
	mpath := ManifestPath(path)
	if !overwrite {
		for _, p := range []string{path, mpath} {
			if _, err := os.Lstat(p); err == nil {
				return Manifest{}, fmt.Errorf("%s %w", p, ErrExists)
			}
		}
	}
	err := writeAtomic(path, func(w io.Writer) error {
		_, err := c.WriteTo(w)
		return err
	})
	if err != nil {
		return Manifest{}, err
	}
	m, err := c.Manifest(context.Background()) // hashed by WriteTo: no second read
	if err != nil {
		return m, err
	}
	m.Export.File = filepath.Base(path)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	return m, writeAtomic(mpath, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}

// writeAtomic writes path through a temporary file beside it: write,
// fsync, rename, fsync the folder.
func writeAtomic(path string, write func(io.Writer) error) error {
	if err := durable.Write(path, 0o644, write); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
