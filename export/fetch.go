package export

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/mp4"
	"github.com/cctvd/cctvd/uploader"
)

// ErrMismatch is wrapped by the errors about a source whose bytes do not
// match what was recorded of it.
var ErrMismatch = errors.New("does not match what was recorded")

// source is an opened source of a clip: parsed and checked, its file held
// open (so retention deleting it, or a download's temporary file being
// unlinked, changes nothing while the clip is read).
type source struct {
	Segment
	mp4  *mp4.Segment
	file *os.File
	read string // ReadLocal or ReadS3
	// kept are the byte ranges of a download stored in file (the samples
	// the clip may play); nil for a local file, which holds them all.
	kept []extent
	// sha256 and bytes are what was read. A local file's are known once
	// check has run.
	sha256 string
	bytes  int64
	// note says why a local file was not used, or what could not be
	// checked.
	note string
	// A local file's bytes are hashed and checked once, before the clip
	// serves any of them (package doc).
	once    sync.Once
	checked error
}

// fetcher opens sources, locally or from S3.
type fetcher struct {
	s3     S3API // nil: local files only
	bucket string
	// prefix is s3Path; locations, if set, every (bucket, prefix) the
	// catalog has uploaded to: where a source is looked for when it is
	// not where its row says.
	prefix    string
	locations func(ctx context.Context) ([]catalog.Location, error)
	log       zerolog.Logger
	distrust  *Distrust
	// from and to are the range: of an S3 object only the bytes of the
	// samples a clip of it may play are stored, in space, whose floor is
	// checked as they are (reserved: what the build reserved there).
	from, to time.Time
	space    *TempSpace
	reserved grant
}

// open opens a source: its local file when it is there, is as long as
// recorded and not distrusted, else its S3 object.
func (f *fetcher) open(ctx context.Context, s Segment) (*source, error) {
	var note string
	if s.Path != "" {
		var err error
		if f.distrust.has(s.Path) {
			err = fmt.Errorf("%s: %w earlier in this run", s.Name, ErrMismatch)
		} else {
			var src *source
			if src, err = f.local(s); err == nil {
				return src, nil
			}
		}
		// A file that went away since the range was listed was most
		// likely uploaded and cleared (clearAfterUpload deletes it the
		// moment S3 has it, verified): S3 is asked for it all the same,
		// and its bytes must still be those recorded.
		gone := errors.Is(err, fs.ErrNotExist) && f.s3 != nil && s.Key != ""
		if (!s.Uploaded || f.s3 == nil) && !gone {
			return nil, asDamaged(s, err)
		}
		if gone && !s.Uploaded {
			src, rerr := f.in(s.Bucket).remote(ctx, s)
			if rerr != nil {
				return nil, asDamaged(s, err)
			}
			src.note = notes("read from S3: the local file went away while the export was made (uploaded and cleared)", src.note)
			return src, nil
		}
		note = "read from S3: the local file " + noPath(err) // manifests are handed over: no box paths in them
		f.log.Warn().Err(err).Str("segment", s.Name).Msg("export: the local file cannot be used; reading the S3 copy")
	}
	if !s.Uploaded || f.s3 == nil {
		return nil, fmt.Errorf("segment %s is neither on this box nor in S3", s.Name)
	}
	src, err := f.in(s.Bucket).remote(ctx, s)
	if notThere(err) {
		src, err = f.elsewhere(ctx, s, err)
	}
	if err != nil {
		return nil, err
	}
	src.note = notes(note, src.note)
	return src, nil
}

// notes joins what is said of a source.
func notes(n ...string) string {
	return strings.Join(slices.DeleteFunc(n, func(s string) bool { return s == "" }), "; ")
}

// notThere says whether S3 answered that the object (or its bucket) is
// not there: 404, NoSuchKey, NoSuchBucket.
func notThere(err error) bool {
	var nsk *types.NoSuchKey
	var re *awshttp.ResponseError
	return errors.As(err, &nsk) || (errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound)
}

// elsewhere looks for a source S3 does not hold where its row says (the
// row's bucket wrong: rows uploaded before cctvd kept each row's bucket
// got the s3Bucket configured at the upgrade) under the same relative key
// (camera/day/file) in every other location the catalog remembers, and
// the configured bucket and prefix; first found, first read. The source
// then says where it was found (the manifest names its bucket and key),
// and if none holds it, the error names every place tried.
func (f *fetcher) elsewhere(ctx context.Context, s Segment, notFound error) (*source, error) {
	rel := relKey(s.Key)
	if rel == "" || f.locations == nil {
		return nil, notFound
	}
	locs, err := f.locations(ctx)
	if err != nil {
		f.log.Warn().Err(err).Str("segment", s.Name).Msg("export: cannot read where the catalog has uploaded to; looking only where the row says")
		return nil, notFound
	}
	first := "s3://" + cmp.Or(s.Bucket, f.bucket) + "/" + s.Key
	tried := []string{first}
	seen := map[string]bool{first: true}
	locs = append(locs, catalog.Location{Bucket: f.bucket, Prefix: f.prefix})
	for _, l := range locs {
		key := uploader.Key(l.Prefix, rel)
		where := "s3://" + l.Bucket + "/" + key
		if l.Bucket == "" || seen[where] {
			continue
		}
		seen[where] = true
		tried = append(tried, where)
		moved := s
		moved.Bucket, moved.Key = l.Bucket, key
		src, err := f.in(l.Bucket).remote(ctx, moved)
		if notThere(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		src.Bucket = l.Bucket // the manifest names it, even when it is the configured one
		src.note = notes("read from "+where+", not "+first+" where the catalog has it", src.note)
		f.log.Warn().Str("segment", s.Name).Str("found", where).Str("recorded", first).
			Msg("export: a source was not where its catalog row says; found it under another location the catalog remembers")
		return src, nil
	}
	return nil, fmt.Errorf("segment %s is not in S3 where the catalog has it, nor anywhere else cctvd uploaded to (tried %s): %w",
		s.Name, strings.Join(tried, ", "), notFound)
}

// relKey is the part of an object's key below s3Path: camera/day/file.
func relKey(key string) string {
	parts := strings.Split(key, "/")
	if len(parts) < 3 {
		return ""
	}
	return strings.Join(parts[len(parts)-3:], "/")
}

// in is the fetcher for objects in bucket: each source is read from its
// own bucket (rows keep theirs across a change of s3Bucket); "" is the
// configured one.
func (f *fetcher) in(bucket string) *fetcher {
	if bucket == "" || bucket == f.bucket {
		return f
	}
	g := *f
	g.bucket = bucket
	return &g
}

// local opens the local file and parses its headers; its bytes are hashed
// and checked later, by check, before any is served.
func (f *fetcher) local(s Segment) (*source, error) {
	file, err := os.Open(s.Path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.Name, err)
	}
	fi, err := file.Stat()
	if err == nil && s.Bytes > 0 && fi.Size() != s.Bytes {
		err = fmt.Errorf("%s: %w: %d bytes, %d recorded", s.Name, ErrMismatch, fi.Size(), s.Bytes)
	}
	var seg *mp4.Segment
	if err == nil {
		seg, err = mp4.ReadAt(file, fi.Size())
	}
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return &source{Segment: s, mp4: seg, file: file, read: ReadLocal, bytes: fi.Size()}, nil
}

// check hashes a local source's file and compares it with what was
// recorded; once, whoever asks first. An S3 source was checked as it was
// downloaded.
func (src *source) check(ctx context.Context, log zerolog.Logger) error {
	if src.read != ReadLocal {
		return nil
	}
	src.once.Do(func() {
		src.checked = recovered(log, "check "+src.Name, func() error { return src.hash(ctx) })
	})
	return src.checked
}

// hash hashes a local source's file and compares the sum with the one
// recorded.
func (src *source) hash(ctx context.Context) error {
	h := sha256.New()
	buf := chunks.Get().(*[]byte)
	defer chunks.Put(buf)
	var off int64
	for off < src.bytes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := src.file.ReadAt((*buf)[:min(int64(len(*buf)), src.bytes-off)], off)
		h.Write((*buf)[:n])
		off += int64(n)
		if err != nil && !(errors.Is(err, io.EOF) && off == src.bytes) {
			return fmt.Errorf("read %s: %w", src.Name, err)
		}
	}
	src.sha256 = hex.EncodeToString(h.Sum(nil))
	if src.SHA256 == "" {
		src.note = "no sha256 recorded yet (not uploaded): hashed at export"
	}
	if src.SHA256 != "" && src.sha256 != src.SHA256 {
		return fmt.Errorf("%s: %w: sha256 %s, %s recorded", src.Name, ErrMismatch, src.sha256, src.SHA256)
	}
	return nil
}

// chunks are the buffers local sources are hashed through.
var chunks = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Distrust remembers local files found not to match what was recorded of
// them: the next clip reads their S3 copies. Safe for concurrent use; the
// zero value is ready, a nil one remembers nothing.
type Distrust struct {
	mu    sync.Mutex
	paths map[string]bool
}

func (d *Distrust) add(path string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.paths == nil {
		d.paths = map[string]bool{}
	}
	d.paths[path] = true
}

func (d *Distrust) has(path string) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.paths[path]
}

// remote downloads the S3 object into an unlinked temporary file, parsing
// and hashing it on the way, and checks it against its metadata.
func (f *fetcher) remote(ctx context.Context, s Segment) (*source, error) {
	out, err := f.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(s.Key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", f.bucket, s.Key, err)
	}
	defer out.Body.Close()
	meta := out.Metadata
	if st, err := time.Parse(uploader.MetaTimeLayout, meta[uploader.MetaStart]); err == nil {
		s.Start = millis(st)
	}
	if en, err := time.Parse(uploader.MetaTimeLayout, meta[uploader.MetaEnd]); err == nil {
		s.End = millis(en)
	}
	if id := meta[uploader.MetaFeedID]; id != "" {
		s.FeedID = id
	}
	file, err := os.CreateTemp(f.space.dir(), ".cctvd-export-*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	os.Remove(file.Name()) // space freed when the clip closes it, even after a crash
	src := &source{Segment: s, file: file, read: ReadS3}
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	sp := newSparse(file, s.Start, s.End, f.from, f.to, f.space, f.reserved)
	if err := src.parse(out.Body, sp, size); err != nil {
		file.Close()
		var se *SpaceError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, asDamaged(s, fmt.Errorf("s3://%s/%s (%d bytes): %w", f.bucket, s.Key, size, err))
	}
	if src.kept, err = sp.finish(); err != nil {
		file.Close()
		return nil, err
	}
	src.ETag = strings.Trim(aws.ToString(out.ETag), `"`)
	// The bytes must be those the catalog recorded (the footage this row
	// is, wherever the object was found) and those the object says it
	// holds: an object that agrees with itself but not with the row is
	// another file.
	inMeta := meta[uploader.MetaSHA256]
	switch {
	case out.ContentLength != nil && *out.ContentLength != src.bytes:
		err = fmt.Errorf("s3://%s/%s: %w: read %d bytes of %d", f.bucket, s.Key, ErrMismatch, src.bytes, *out.ContentLength)
	case s.Bytes > 0 && s.Bytes != src.bytes:
		err = fmt.Errorf("s3://%s/%s: %w: %d bytes, %d recorded", f.bucket, s.Key, ErrMismatch, src.bytes, s.Bytes)
	case s.SHA256 != "" && s.SHA256 != src.sha256:
		err = fmt.Errorf("s3://%s/%s: %w: sha256 %s, the catalog says %s", f.bucket, s.Key, ErrMismatch, src.sha256, s.SHA256)
	case inMeta != "" && inMeta != src.sha256:
		err = fmt.Errorf("s3://%s/%s: %w: sha256 %s, its metadata says %s", f.bucket, s.Key, ErrMismatch, src.sha256, inMeta)
	case inMeta == "" && s.SHA256 == "":
		src.note = "no sha256 recorded in the object's metadata: hashed at export"
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return src, nil
}

// readers are the buffers sources are parsed through: reused, not one
// new megabyte per segment.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1<<20) }}

// parse reads the whole of r (the file of size bytes, -1 if not known)
// as a segment, hashing it and passing its bytes to sp as they are read:
// each fragment's samples reach sp before their bytes do.
func (src *source) parse(r io.Reader, sp *sparse, size int64) error {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	h := sha256.New()
	tr := io.TeeReader(br, io.MultiWriter(h, sp))
	seg, n, err := mp4.ReadWith(tr, mp4.Options{Size: size, Fragment: sp.fragment})
	if err != nil {
		return fmt.Errorf("%s: %w", src.Name, err)
	}
	rest, err := io.Copy(io.Discard, tr) // whatever follows: hashed too
	if err != nil {
		return fmt.Errorf("read %s: %w", src.Name, err)
	}
	src.mp4, src.bytes, src.sha256 = seg, n+rest, hex.EncodeToString(h.Sum(nil))
	return nil
}

// openAll opens every segment, parallel at most n at a time. Those that
// cannot be read as recordings are returned apart (damaged: gaps, not a
// failed export); on any other error it closes what it opened.
func (f *fetcher) openAll(ctx context.Context, segs []Segment, n int) ([]*source, []*damagedError, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]*source, len(segs))
	errs := make([]error, len(segs))
	sem := make(chan struct{}, max(1, n))
	var wg sync.WaitGroup
	for i, s := range segs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			if errs[i] = ctx.Err(); errs[i] != nil {
				return
			}
			errs[i] = recovered(f.log, "open "+s.Name, func() error {
				var err error
				out[i], err = f.open(ctx, s)
				return err
			})
			var d *damagedError
			if errs[i] != nil && !errors.As(errs[i], &d) {
				cancel()
			}
		}()
	}
	wg.Wait()
	var first error
	var bad []*damagedError
	for _, err := range errs { // the first real error, not a cancellation it caused
		var d *damagedError
		if errors.As(err, &d) {
			bad = append(bad, d)
			continue
		}
		if err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	var opened []*source
	for _, s := range out {
		if s != nil {
			opened = append(opened, s)
		}
	}
	if first != nil {
		for _, s := range opened {
			s.file.Close()
		}
		return nil, nil, first
	}
	return opened, bad, nil
}

// noPath is err's text without the file path an *os.PathError carries.
func noPath(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// ErrInternal is wrapped by the error of a build that panicked: a bug, or
// a file no check foresaw. The export fails; the daemon goes on.
var ErrInternal = errors.New("export: internal error")

// recovered runs fn, turning a panic into an error (and a log line with
// the stack): every goroutine of a build runs through it, so a hostile
// or broken source fails its export, never the daemon.
func recovered(log zerolog.Logger, what string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: %v", ErrInternal, what, p)
			log.Error().Err(err).Str("stack", string(debug.Stack())).Msg("export: a build panicked; it fails, the daemon goes on")
		}
	}()
	return fn()
}
