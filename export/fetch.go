package export

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/mp4"
	"github.com/cctvd/cctvd/uploader"
)

// ErrMismatch is wrapped by the errors about a source whose bytes do not
// match what was recorded of it.
var ErrMismatch = errors.New("does not match what was recorded")

// source is an opened source of a clip: parsed, hashed, checked, its file
// held open (so retention deleting it, or a download's temporary file
// being unlinked, changes nothing while the clip is read).
type source struct {
	Segment
	mp4    *mp4.Segment
	file   *os.File
	read   string // ReadLocal or ReadS3
	sha256 string
	bytes  int64
	// note says why a local file was not used, or what could not be
	// checked.
	note string
}

// fetcher opens sources, locally or from S3.
type fetcher struct {
	s3     S3API // nil: local files only
	bucket string
	tmp    string
	log    zerolog.Logger
}

// open opens a source: its local file when it is there and matches what
// was recorded, else its S3 object.
func (f *fetcher) open(ctx context.Context, s Segment) (*source, error) {
	var note string
	if s.Path != "" {
		src, err := f.local(s)
		if err == nil {
			return src, nil
		}
		if !s.Uploaded || f.s3 == nil {
			return nil, err
		}
		note = fmt.Sprintf("read from S3: the local file %v", err)
		f.log.Warn().Err(err).Str("segment", s.Name).Msg("export: the local file cannot be used; reading the S3 copy")
	}
	if !s.Uploaded || f.s3 == nil {
		return nil, fmt.Errorf("segment %s is neither on this box nor in S3", s.Name)
	}
	src, err := f.remote(ctx, s)
	if err != nil {
		return nil, err
	}
	if note != "" {
		src.note = note
	}
	return src, nil
}

// local opens, parses and hashes the local file in one pass.
func (f *fetcher) local(s Segment) (*source, error) {
	file, err := os.Open(s.Path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.Name, err)
	}
	src := &source{Segment: s, file: file, read: ReadLocal}
	h := sha256.New()
	if err := src.parse(io.TeeReader(file, h), h); err != nil {
		file.Close()
		return nil, err
	}
	switch {
	case s.Bytes > 0 && src.bytes != s.Bytes:
		err = fmt.Errorf("%s: %w: %d bytes, %d recorded", s.Name, ErrMismatch, src.bytes, s.Bytes)
	case s.SHA256 != "" && src.sha256 != s.SHA256:
		err = fmt.Errorf("%s: %w: sha256 %s, %s recorded", s.Name, ErrMismatch, src.sha256, s.SHA256)
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	if s.SHA256 == "" {
		src.note = "no sha256 recorded yet (not uploaded): hashed at export"
	}
	return src, nil
}

// remote downloads the S3 object into an unlinked temporary file, parsing
// and hashing it on the way, and checks it against its metadata.
func (f *fetcher) remote(ctx context.Context, s Segment) (*source, error) {
	out, err := f.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(s.Key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", f.bucket, s.Key, err)
	}
	defer out.Body.Close()
	file, err := os.CreateTemp(f.tmp, ".cctvd-export-*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	os.Remove(file.Name()) // space freed when the clip closes it, even after a crash
	src := &source{Segment: s, file: file, read: ReadS3}
	h := sha256.New()
	w := bufio.NewWriterSize(file, 1<<20)
	if err := src.parse(io.TeeReader(out.Body, io.MultiWriter(w, h)), h); err != nil {
		file.Close()
		return nil, fmt.Errorf("s3://%s/%s: %w", f.bucket, s.Key, err)
	}
	if err := w.Flush(); err != nil {
		file.Close()
		return nil, fmt.Errorf("export: save %s: %w", s.Name, err)
	}
	meta := out.Metadata
	if st, err := time.Parse(uploader.MetaTimeLayout, meta[uploader.MetaStart]); err == nil {
		src.Start = millis(st)
	}
	if en, err := time.Parse(uploader.MetaTimeLayout, meta[uploader.MetaEnd]); err == nil {
		src.End = millis(en)
	}
	if id := meta[uploader.MetaFeedID]; id != "" {
		src.FeedID = id
	}
	src.ETag = strings.Trim(aws.ToString(out.ETag), `"`)
	recorded, what := meta[uploader.MetaSHA256], "its metadata"
	if recorded == "" {
		recorded, what = s.SHA256, "the catalog"
	}
	switch {
	case out.ContentLength != nil && *out.ContentLength != src.bytes:
		err = fmt.Errorf("s3://%s/%s: %w: read %d bytes of %d", f.bucket, s.Key, ErrMismatch, src.bytes, *out.ContentLength)
	case s.Bytes > 0 && s.Bytes != src.bytes:
		err = fmt.Errorf("s3://%s/%s: %w: %d bytes, %d recorded", f.bucket, s.Key, ErrMismatch, src.bytes, s.Bytes)
	case recorded != "" && recorded != src.sha256:
		err = fmt.Errorf("s3://%s/%s: %w: sha256 %s, %s says %s", f.bucket, s.Key, ErrMismatch, src.sha256, what, recorded)
	case recorded == "":
		src.note = "no sha256 recorded in the object's metadata: hashed at export"
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return src, nil
}

// parse reads the whole of r (the file, teed into h) as a segment.
func (src *source) parse(r io.Reader, h hash.Hash) error {
	br := bufio.NewReaderSize(r, 1<<20)
	seg, n, err := mp4.Read(br)
	if err != nil {
		return fmt.Errorf("%s: %w", src.Name, err)
	}
	rest, err := io.Copy(io.Discard, br) // whatever follows: hashed too
	if err != nil {
		return fmt.Errorf("read %s: %w", src.Name, err)
	}
	src.mp4, src.bytes, src.sha256 = seg, n+rest, hex.EncodeToString(h.Sum(nil))
	return nil
}

// openAll opens every segment, parallel at most n at a time; on an error
// it closes what it opened.
func (f *fetcher) openAll(ctx context.Context, segs []Segment, n int) ([]*source, error) {
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
			out[i], errs[i] = f.open(ctx, s)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	var first error
	for _, err := range errs { // the first real error, not a cancellation it caused
		if err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		for _, s := range out {
			if s != nil {
				s.file.Close()
			}
		}
		return nil, first
	}
	return out, nil
}
