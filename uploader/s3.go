package uploader

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/catalog"
)

// S3API is what the uploader needs of an S3 client.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, opts ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	ListParts(ctx context.Context, in *s3.ListPartsInput, opts ...func(*s3.Options)) (*s3.ListPartsOutput, error)
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
	// MetaDecodeCheck says how a file cctvd did not see close (rebuilt
	// from the disk, salvaged) was checked before it went up: "passed",
	// ffprobe decoded every frame; "skipped", the decode check could not
	// run (DecodeTries times), only the cheap structural check passed.
	// Absent on segments cctvd saw close.
	MetaDecodeCheck = "decode-check"
	// MetaFeed is "sub" on a segment of its camera's sub feed (absent on
	// a main feed's), so that the bucket alone tells the feeds apart.
	MetaFeed = "feed"
	// MetaActivity and MetaActivityHeatmap hold the segment's activity
	// (package activity's FormatMeta), when it was analysed.
	MetaActivity        = activity.MetaKey
	MetaActivityHeatmap = activity.MetaHeatmapKey
)

// MaxMetadata is S3's bound on an object's user metadata: keys and values
// together, in bytes.
const MaxMetadata = 2048

// activityCatalog is what put asks of the catalog for the activity
// metadata; *catalog.Catalog has it, and a catalog without it puts none.
type activityCatalog interface {
	SegmentActivity(ctx context.Context, id int64) (activity.Summary, bool, error)
}

// addActivity puts the segment's activity in meta, within S3's bound (the
// heatmap goes first when the whole does not fit, then the activity).
func (a *attempter) addActivity(ctx context.Context, r catalog.Record, meta map[string]string) {
	ac, ok := a.u.deps.Catalog.(activityCatalog)
	if !ok {
		return
	}
	sum, found, err := ac.SegmentActivity(ctx, r.ID)
	if err != nil {
		a.u.log.Warn().Err(err).Str("segment", r.Name()).Msg("cannot read the segment's activity; uploading without it")
		return
	}
	if !found {
		return
	}
	act, heat := activity.FormatMeta(sum)
	meta[MetaActivity], meta[MetaActivityHeatmap] = act, heat
	for _, k := range []string{MetaActivityHeatmap, MetaActivity} {
		if metaSize(meta) <= MaxMetadata {
			return
		}
		delete(meta, k)
	}
}

func metaSize(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		n += len(k) + len(v)
	}
	return n
}

// MetaTimeLayout is the format of the start and end metadata: RFC 3339 in
// UTC, to the millisecond.
const MetaTimeLayout = "2006-01-02T15:04:05.000Z"

// partSize is the part size of a multipart upload of size bytes, 0 for a
// file that goes up in one PutObject (no bigger than the configured part
// size). It grows the parts of a file that would need more than S3's
// 10,000.
func partSize(size, configured int64) int64 {
	if size <= configured {
		return 0
	}
	if size/configured >= maxUploadParts {
		return size/maxUploadParts + 1
	}
	return configured
}

// put sends the file under r.Key, with If-None-Match: * when conditional:
// one PutObject up to the part size, a multipart upload above. It returns
// the ETag and how S3's answer was checked against the local file: the
// checksum S3 computed, or, from a server that keeps none, the ETag.
func (a *attempter) put(ctx context.Context, r catalog.Record, f *os.File, size int64, sums checksums, conditional bool) (etag, how string, err error) {
	meta := map[string]string{
		MetaCamera: r.Camera,
		MetaFeedID: r.FeedID,
		// To the millisecond (names are rounded to the second).
		MetaStart:  r.Start.UTC().Format(MetaTimeLayout),
		MetaEnd:    r.End.UTC().Format(MetaTimeLayout),
		MetaSHA256: sums.sha256,
	}
	if r.Sub {
		meta[MetaFeed] = "sub"
	}
	if c := r.DecodeCheck; c == catalog.DecodePassed || c == catalog.DecodeSkipped {
		meta[MetaDecodeCheck] = c
	}
	a.addActivity(ctx, r, meta)
	if _, err := f.Seek(0, io.SeekStart); err != nil { // an earlier write of this attempt read it
		return "", "", fmt.Errorf("rewind %s: %w", r.Name(), err)
	}
	var ifNoneMatch *string
	if conditional {
		ifNoneMatch = aws.String("*")
	}
	if sums.partSize == 0 {
		var contentMD5 *string
		if sums.md5raw != nil { // a server that keeps no checksums checks this instead
			contentMD5 = aws.String(base64.StdEncoding.EncodeToString(sums.md5raw))
		}
		out, err := a.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(a.cfg.Bucket),
			Key:           aws.String(r.Key),
			Body:          f, // seekable: the SDK rewinds it to retry
			ContentLength: aws.Int64(size),
			ContentMD5:    contentMD5,
			// Known before the send (hash.go), so sent as a header (never
			// an aws-chunked trailer, which MinIO over HTTPS refuses above
			// 16 MiB); S3 refuses the object unless what it received has it.
			ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
			ChecksumSHA256:    aws.String(sums.sha256b64),
			ContentType:       aws.String("video/mp4"),
			Metadata:          meta,
			IfNoneMatch:       ifNoneMatch,
		}, unsignedPayload)
		if err != nil {
			return "", "", fmt.Errorf("upload %s: %w", r.Key, mismatch(err))
		}
		etag = aws.ToString(out.ETag)
		how, err = a.checkAnswer(r.Key, aws.ToString(out.ChecksumSHA256), sums.sha256b64, VerifiedSHA256, etag,
			func() (string, error) { return a.fileETag(f, size, sums) }, out.ServerSideEncryption)
		return etag, how, err
	}

	out, err := a.multipart(ctx, r, f, size, sums, meta, ifNoneMatch)
	if err != nil {
		return "", "", err
	}
	etag = aws.ToString(out.ETag)
	how, err = a.checkAnswer(r.Key, aws.ToString(out.ChecksumCRC64NVME), sums.crc64b64, VerifiedCRC64NVME, etag,
		func() (string, error) { return a.fileETag(f, size, sums) }, out.ServerSideEncryption)
	return etag, how, err
}

// mismatch marks S3's refusal of bytes that do not match the checksum
// they carry (AWS: BadDigest; MinIO: XAmzContentChecksumMismatch) as
// errFileChanged: every checksum sent was taken from the file earlier,
// and the file no longer gives the same bytes.
func mismatch(err error) error {
	var api smithy.APIError
	if errors.As(err, &api) && (api.ErrorCode() == "BadDigest" || api.ErrorCode() == "XAmzContentChecksumMismatch") {
		return fmt.Errorf("%w (S3: %s)", errFileChanged, api.ErrorMessage())
	}
	return err
}

// fileETag is the ETag a server that keeps no checksums gives the file
// (its MD5, or the multipart ETag of its parts' MD5s), from sums when they
// hold it, else from reading the file again (the first upload to such a
// server: from then on every upload reads it first, hash.go); that read
// must give the checksums the upload carried.
func (a *attempter) fileETag(f *os.File, size int64, sums checksums) (string, error) {
	if sums.md5 != "" || sums.multipartETag != "" {
		return sums.md5 + sums.multipartETag, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil { // the send left it at its end
		return "", fmt.Errorf("read the file again: %w", err)
	}
	now, err := hashFile(f, size, sums.partSize, true)
	if err != nil {
		return "", fmt.Errorf("read the file again: %w", err)
	}
	if now.sha256 != sums.sha256 || now.crc64b64 != sums.crc64b64 {
		return "", errFileChanged
	}
	return now.md5 + now.multipartETag, nil
}

// checkAnswer compares S3's answer to an upload with the local file: the
// checksum it computed when it has one (method names it); otherwise, from
// a server that keeps no checksums, the ETag against the file's (wantETag),
// unless the object is encrypted with KMS or a customer key, whose ETag is
// no MD5 (then only the HEAD that follows can check the size and metadata).
func (a *attempter) checkAnswer(key, got, want, method, etag string, wantETag func() (string, error), sse types.ServerSideEncryption) (string, error) {
	if got != "" {
		if got != want {
			return "", fmt.Errorf("upload %s: %w: S3's checksum %s, the file's %s", key, ErrVerify, got, want)
		}
		return method, nil
	}
	if !a.server.noChecksums.Swap(true) {
		a.u.log.Info().Msg("this S3 server returns no checksums: uploads are verified by their ETag (each file is read whole for its MD5 before it is sent)")
	}
	e := strings.Trim(etag, `"`)
	if sse == types.ServerSideEncryptionAwsKms || sse == types.ServerSideEncryptionAwsKmsDsse {
		return VerifiedMetadata, nil
	}
	file, err := wantETag()
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", key, err)
	}
	switch {
	case e == file:
		return VerifiedETag, nil
	case !looksLikeETag(e, file):
		return VerifiedMetadata, nil
	}
	return "", fmt.Errorf("upload %s: %w: ETag %s, the file's %s", key, ErrVerify, e, file)
}

// looksLikeETag says whether etag has the form of want (an MD5 in hex, or
// a multipart ETag "<md5>-<parts>"): a server whose ETags are something
// else cannot be checked by them.
func looksLikeETag(etag, want string) bool {
	h, parts, multipart := strings.Cut(etag, "-")
	_, _, wantMultipart := strings.Cut(want, "-")
	return isMD5Hex(h) && multipart == wantMultipart && (!multipart || parts != "")
}

// unsignedPayload signs requests without hashing their bodies: every body
// carries its checksum, which S3 checks, so a pass over the bytes for
// SigV4's payload hash would buy nothing.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// remoteObject is what a HEAD says of an object.
type remoteObject struct {
	size       int64
	etag       string
	sha256Meta string // the sha256 metadata cctvd writes
	camera     string
	// Checksums S3 keeps, base64; checksumSHA256 may be composite ("-N").
	checksumSHA256, checksumCRC64 string
}

// matches says whether the object holds the local file's content, and how
// that was told: by a full-object checksum S3 keeps, else by the sha256
// metadata. An object with neither is not known to match.
func (o remoteObject) matches(size int64, sums checksums) (how string, same bool) {
	if o.size != size || (o.sha256Meta != "" && o.sha256Meta != sums.sha256) {
		return "", false
	}
	switch {
	case o.checksumSHA256 != "" && !strings.Contains(o.checksumSHA256, "-"):
		return VerifiedSHA256, o.checksumSHA256 == sums.sha256b64
	case o.checksumCRC64 != "":
		return VerifiedCRC64NVME, o.checksumCRC64 == sums.crc64b64
	case o.sha256Meta != "":
		return VerifiedMetadata, true // an object uploaded without a checksum (cctvd v0.1.0)
	}
	return "", false
}

// head asks S3 for an object and the checksums it keeps of it.
func (a *attempter) head(ctx context.Context, key string) (remoteObject, bool, error) {
	out, err := a.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(a.cfg.Bucket), Key: aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled})
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return remoteObject{}, false, nil
	}
	if err != nil {
		return remoteObject{}, false, fmt.Errorf("check %s: %w", key, err)
	}
	return remoteObject{size: aws.ToInt64(out.ContentLength), etag: aws.ToString(out.ETag), sha256Meta: out.Metadata[MetaSHA256],
		camera: out.Metadata[MetaCamera], checksumSHA256: aws.ToString(out.ChecksumSHA256), checksumCRC64: aws.ToString(out.ChecksumCRC64NVME)}, true, nil
}

// abort aborts one multipart upload, with a fresh context so that a
// shutdown does not leave its parts on the server.
func (a *attempter) abort(ctx context.Context, key, uploadID string) error {
	return a.abortIn(ctx, a.cfg.Bucket, key, uploadID)
}

// abortIn aborts a multipart upload in bucket.
func (a *attempter) abortIn(ctx context.Context, bucket, key, uploadID string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := a.s3.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	var nsu *types.NoSuchUpload
	if err != nil && !errors.As(err, &nsu) {
		return fmt.Errorf("abort multipart upload of %s: %w", key, err)
	}
	a.u.log.Info().Str("key", key).Msg("aborted an unfinished multipart upload")
	return nil
}

// abortStale aborts every multipart upload of key left on the server but
// the one the catalog records for the segment (which resumes). (MinIO
// lists them only with the exact key as the prefix.)
func (a *attempter) abortStale(ctx context.Context, id int64, key string) error {
	rec, recorded, err := a.u.deps.Catalog.MultipartOf(ctx, id)
	if err != nil {
		return err
	}
	out, err := a.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(a.cfg.Bucket), Prefix: aws.String(key)})
	if err != nil {
		return fmt.Errorf("list multipart uploads of %s: %w", key, err)
	}
	for _, up := range out.Uploads {
		if aws.ToString(up.Key) != key || (recorded && rec.Key == key && rec.UploadID == aws.ToString(up.UploadId)) {
			continue
		}
		if err := a.abort(ctx, key, aws.ToString(up.UploadId)); err != nil {
			return err
		}
	}
	return nil
}
