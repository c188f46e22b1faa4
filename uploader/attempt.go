package uploader

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cctvd/cctvd/catalog"
)

// S3API is what the uploader needs of an S3 client.
type S3API interface {
	manager.UploadAPIClient
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput, opts ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
}

// Object metadata keys (x-amz-meta-*).
const (
	MetaCamera = "camera"
	MetaFeedID = "feed-id"
	MetaStart  = "start"
	MetaEnd    = "end"
	MetaSHA256 = "sha256"
)

// MetaTimeLayout is the format of the start and end metadata: RFC 3339 in
// UTC, to the millisecond.
const MetaTimeLayout = "2006-01-02T15:04:05.000Z"

// errVerify marks an object S3 accepted that does not match the local file.
var errVerify = errors.New("verification failed")

// attempter makes upload attempts with the settings in force when it was
// made: a reload changes them for the next attempt, not one under way.
type attempter struct {
	u   *Uploader
	cfg Config
	s3  S3API
}

// attempt makes one upload attempt for r, from hashing to verification.
func (a *attempter) attempt(ctx context.Context, r catalog.Record) error {
	cat := a.u.deps.Catalog
	keep := context.WithoutCancel(ctx) // catalog writes must land even when cut short
	if err := cat.StartAttempt(keep, r.ID); err != nil {
		return err
	}
	if r.UploadID != "" {
		if err := a.abort(ctx, r.Key, r.UploadID); err != nil {
			return err
		}
		if err := cat.SetUploadID(keep, r.ID, ""); err != nil {
			return err
		}
	}
	f, err := os.Open(r.Path)
	if err != nil {
		return fmt.Errorf("open %s: %w", r.Name(), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", r.Name(), err)
	}
	size := fi.Size()
	sums, err := hashFile(f, size, a.cfg.PartSize)
	if err != nil {
		return fmt.Errorf("read %s: %w", r.Name(), err)
	}
	if sums.sha256 != r.SHA256 || sums.md5 != r.MD5 {
		if r.SHA256 != "" {
			a.u.log.Warn().Str("segment", r.Name()).Msg("file changed since an earlier attempt; uploading what is on disk now")
		}
		if err := cat.SetChecksums(keep, r.ID, sums.sha256, sums.md5); err != nil {
			return err
		}
	}

	if r.VerifyRemote {
		// The object may be in S3 already: a catalog rebuilt from disk, or
		// an attempt a crash cut short after S3 had it.
		has, etag, err := a.remoteHas(ctx, r.Key, size, sums.sha256)
		if err != nil {
			return err
		}
		if has {
			a.u.log.Info().Str("segment", r.Name()).Msg("already in S3, verified; not uploading again")
			return a.done(keep, r, etag)
		}
		if err := a.abortStale(ctx, r.Key); err != nil {
			return err
		}
	}

	etag, err := a.put(ctx, r, f, size, sums)
	if err != nil {
		return err
	}
	has, _, err := a.remoteHas(ctx, r.Key, size, sums.sha256)
	if err != nil {
		return err
	}
	if !has {
		return fmt.Errorf("upload %s: %w: S3 does not hold %d bytes with sha256 %s", r.Key, errVerify, size, sums.sha256)
	}
	return a.done(keep, r, etag)
}

// done records a verified upload and, with clearAfterUpload, deletes the
// local file, only then.
func (a *attempter) done(ctx context.Context, r catalog.Record, etag string) error {
	if err := a.u.deps.Catalog.MarkUploaded(ctx, r.ID, etag); err != nil {
		return err
	}
	a.u.log.Info().Str("segment", r.Name()).Str("key", r.Key).Msg("uploaded and verified")
	if !a.cfg.ClearAfterUpload {
		return nil
	}
	if err := os.Remove(r.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.u.log.Error().Err(err).Str("segment", r.Name()).Msg("cannot delete the uploaded file")
		return nil // uploaded all the same; retention will see the file
	}
	return a.u.deps.Catalog.MarkLocalDeleted(ctx, r.ID, catalog.CauseClearAfterUpload)
}

// put sends the file: one PutObject below the part size, a multipart upload
// from it up. It returns the ETag, checked against the local file's.
func (a *attempter) put(ctx context.Context, r catalog.Record, f *os.File, size int64, sums checksums) (string, error) {
	meta := map[string]string{
		MetaCamera: r.Camera,
		MetaFeedID: r.FeedID,
		// To the millisecond (names are rounded to the second).
		MetaStart:  r.Start.UTC().Format(MetaTimeLayout),
		MetaEnd:    r.End.UTC().Format(MetaTimeLayout),
		MetaSHA256: sums.sha256,
	}
	if size < a.cfg.PartSize {
		out, err := a.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(a.cfg.Bucket),
			Key:           aws.String(r.Key),
			Body:          f, // seekable: the SDK rewinds it to retry
			ContentLength: aws.Int64(size),
			ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sums.md5raw)),
			ContentType:   aws.String("video/mp4"),
			Metadata:      meta,
		}, unsignedPayload)
		if err != nil {
			return "", fmt.Errorf("upload %s: %w", r.Key, err)
		}
		etag := aws.ToString(out.ETag)
		if e := strings.Trim(etag, `"`); isMD5Hex(e) && e != sums.md5 {
			return "", fmt.Errorf("upload %s: %w: ETag %s, local MD5 %s", r.Key, errVerify, e, sums.md5)
		}
		return etag, nil
	}

	keep := context.WithoutCancel(ctx)
	client := &recordingClient{S3API: a.s3, created: func(id string) {
		if err := a.u.deps.Catalog.SetUploadID(keep, r.ID, id); err != nil {
			a.u.log.Error().Err(err).Msg("cannot record the multipart upload id")
		}
	}}
	up := manager.NewUploader(client, func(m *manager.Uploader) {
		m.PartSize = a.cfg.PartSize
		m.Concurrency = a.cfg.PartConcurrency
		// The manager would abort with the request's context, which a
		// shutdown has cancelled; we abort ourselves with a fresh one.
		m.LeavePartsOnError = true
		m.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		m.ClientOptions = append(m.ClientOptions, unsignedPayload)
	})
	out, err := up.Upload(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(a.cfg.Bucket),
		Key:         aws.String(r.Key),
		Body:        f, // an io.ReaderAt: parts are read from the file, not buffered
		ContentType: aws.String("video/mp4"),
		Metadata:    meta,
	})
	if err != nil {
		var mu manager.MultiUploadFailure
		if errors.As(err, &mu) {
			if aerr := a.abort(ctx, r.Key, mu.UploadID()); aerr != nil {
				a.u.log.Warn().Err(aerr).Str("segment", r.Name()).Msg("cannot abort the multipart upload yet; will retry")
			} else if cerr := a.u.deps.Catalog.SetUploadID(keep, r.ID, ""); cerr != nil {
				a.u.log.Error().Err(cerr).Msg("cannot clear the multipart upload id")
			}
		}
		return "", fmt.Errorf("upload %s: %w", r.Key, err)
	}
	if err := a.u.deps.Catalog.SetUploadID(keep, r.ID, ""); err != nil {
		return "", err
	}
	etag := aws.ToString(out.ETag)
	if e := strings.Trim(etag, `"`); strings.Contains(e, "-") && e != sums.multipartETag {
		return "", fmt.Errorf("upload %s: %w: ETag %s, expected %s", r.Key, errVerify, e, sums.multipartETag)
	}
	return etag, nil
}

// unsignedPayload signs requests without hashing their bodies: the file
// was hashed already, a single PUT carries its Content-MD5 and a multipart
// upload's ETag is checked against the parts' MD5s, so a third pass over
// the bytes (SigV4's payload hash) would buy nothing.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// recordingClient records a multipart upload's id as soon as S3 gives it.
type recordingClient struct {
	S3API
	created func(uploadID string)
}

func (c *recordingClient) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	out, err := c.S3API.CreateMultipartUpload(ctx, in, opts...)
	if err == nil {
		c.created(aws.ToString(out.UploadId))
	}
	return out, err
}

// remoteHas reports whether S3 holds key with this size and sha256, and
// its ETag.
func (a *attempter) remoteHas(ctx context.Context, key string, size int64, sha string) (bool, string, error) {
	out, err := a.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(a.cfg.Bucket), Key: aws.String(key)})
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("check %s: %w", key, err)
	}
	return aws.ToInt64(out.ContentLength) == size && out.Metadata[MetaSHA256] == sha, aws.ToString(out.ETag), nil
}

// abort aborts one multipart upload, with a fresh context so that a
// shutdown does not leave its parts on the server.
func (a *attempter) abort(ctx context.Context, key, uploadID string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := a.s3.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(a.cfg.Bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	var nsu *types.NoSuchUpload
	if err != nil && !errors.As(err, &nsu) {
		return fmt.Errorf("abort multipart upload of %s: %w", key, err)
	}
	a.u.log.Info().Str("key", key).Msg("aborted an unfinished multipart upload")
	return nil
}

// abortStale aborts every multipart upload of key left on the server.
// (MinIO lists them only with the exact key as the prefix.)
func (a *attempter) abortStale(ctx context.Context, key string) error {
	out, err := a.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(a.cfg.Bucket), Prefix: aws.String(key)})
	if err != nil {
		return fmt.Errorf("list multipart uploads of %s: %w", key, err)
	}
	for _, up := range out.Uploads {
		if aws.ToString(up.Key) != key {
			continue
		}
		if err := a.abort(ctx, key, aws.ToString(up.UploadId)); err != nil {
			return err
		}
	}
	return nil
}

// cleanUpInterrupted deals with uploads a crash cut short: it aborts their
// multipart uploads, if S3 answers now; otherwise each is dealt with at its
// next attempt.
func (u *Uploader) cleanUpInterrupted(ctx context.Context) {
	recs, err := u.deps.Catalog.Interrupted(ctx)
	if err != nil {
		u.log.Error().Err(err).Msg("cannot read interrupted uploads")
		return
	}
	if len(recs) == 0 {
		return
	}
	u.log.Info().Int("segments", len(recs)).Msg("uploads were interrupted by the last stop; they will be checked and redone")
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	a := u.attempter()
	for _, r := range recs {
		if r.UploadID != "" {
			if err := a.abort(cctx, r.Key, r.UploadID); err != nil {
				u.log.Warn().Err(err).Str("segment", r.Name()).Msg("cannot abort an interrupted multipart upload yet")
				continue
			}
			if err := u.deps.Catalog.SetUploadID(ctx, r.ID, ""); err != nil {
				u.log.Error().Err(err).Msg("cannot clear the multipart upload id")
			}
		}
		if err := a.abortStale(cctx, r.Key); err != nil {
			u.log.Warn().Err(err).Str("segment", r.Name()).Msg("cannot list interrupted multipart uploads yet")
		}
	}
}

type checksums struct {
	sha256, md5 string
	md5raw      []byte
	// multipartETag is the ETag S3 gives a multipart upload of the file in
	// parts of the part size: the MD5 of the parts' MD5s, "-", the count.
	multipartETag string
}

// hashFile reads f once for its sha256, its MD5 and, when it is at least
// partSize long, its multipart ETag, then rewinds it. The sha256 is computed
// beside the rest, on another core.
func hashFile(f *os.File, size, partSize int64) (checksums, error) {
	var c checksums
	whole := md5.New()
	sha := make(chan []byte, 4)
	shaDone := make(chan []byte)
	go func() {
		h := sha256.New()
		for chunk := range sha {
			h.Write(chunk)
		}
		shaDone <- h.Sum(nil)
	}()
	var parts []byte
	var part hash.Hash
	var inPart int64
	multipart := size >= partSize
	var readErr error
	for {
		buf := make([]byte, 256<<10) // handed to the sha256 goroutine: a new one each time
		n, err := io.ReadFull(f, buf)
		data := buf[:n]
		if n > 0 {
			sha <- data
		}
		for p := data; len(p) > 0; {
			chunk := p
			if multipart {
				if part == nil {
					part = md5.New()
				}
				chunk = p[:min(int64(len(p)), partSize-inPart)]
				part.Write(chunk)
				inPart += int64(len(chunk))
				if inPart == partSize {
					parts, part, inPart = part.Sum(parts), nil, 0
				}
			}
			whole.Write(chunk)
			p = p[len(chunk):]
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	close(sha)
	shaSum := <-shaDone
	if readErr != nil {
		return c, readErr
	}
	if part != nil {
		parts = part.Sum(parts)
	}
	c.md5raw = whole.Sum(nil)
	c.md5 = hex.EncodeToString(c.md5raw)
	c.sha256 = hex.EncodeToString(shaSum)
	if multipart {
		m := md5.Sum(parts)
		c.multipartETag = hex.EncodeToString(m[:]) + "-" + strconv.Itoa(len(parts)/md5.Size)
	}
	_, err := f.Seek(0, io.SeekStart)
	return c, err
}

func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
