package uploader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/segment"
)

// How S3's copy of a segment was checked, in catalog.Record.Verified.
const (
	// VerifiedSHA256: S3's SHA-256 of the whole object, computed from the
	// bytes it received, equals the local file's.
	VerifiedSHA256 = "checksum-sha256"
	// VerifiedCRC64NVME: S3's full-object CRC-64/NVME of a multipart
	// upload equals the local file's.
	VerifiedCRC64NVME = "checksum-crc64nvme"
	// VerifiedETag: the server keeps no checksums; its ETag equals the
	// local file's MD5 (or the multipart ETag of its parts' MD5s).
	VerifiedETag = "etag-md5"
	// VerifiedMetadata: only the size and the sha256 metadata cctvd wrote
	// could be compared: an object uploaded by cctvd v0.1.0, or a server
	// with neither checksums nor MD5 ETags (SSE-KMS without checksums).
	VerifiedMetadata = "size-metadata"
	// VerifiedEarlier: the local file was damaged and quarantined; S3
	// keeps an object cctvd uploaded earlier under the segment's key, and
	// that is the segment's copy.
	VerifiedEarlier = "earlier-upload"
)

// ErrVerify marks an object S3 accepted that does not match the local file.
var ErrVerify = errors.New("verification failed")

// errQuarantined ends an attempt whose file was damaged and quarantined.
var errQuarantined = errors.New("quarantined")

// errConflictsTaken: S3 holds different content under the segment's key
// and under every one of its conflict keys too.
var errConflictsTaken = errors.New("S3 holds different content under the key and under every conflict key")

// errFileChanged: the bytes sent are not those the file's checksums were
// taken from (S3 refused them against those checksums, or the parts' CRCs
// do not make the whole file's): the file changed since they were taken,
// or the disk returned other bytes.
var errFileChanged = fmt.Errorf("%w: the file's bytes are not those its checksums were taken from", ErrVerify)

// errAwaitDecode ends an attempt whose file must be decoded first: the row
// is handed to the decode lane, the slot freed.
var errAwaitDecode = errors.New("handed to the decode lane")

// attempter makes upload attempts with the settings in force when it was
// made: a reload changes them for the next attempt, not one under way.
type attempter struct {
	u      *Uploader
	cfg    Config
	s3     S3API
	server *serverState
	mtime  time.Time // the file's, when this attempt opened it
}

// attempt makes one upload attempt for r, from checking the file to
// verifying S3's copy.
func (a *attempter) attempt(ctx context.Context, r catalog.Record) error {
	cat := a.u.deps.Catalog
	keep := context.WithoutCancel(ctx) // catalog writes must land even when cut short
	if err := cat.StartAttempt(keep, r.ID); err != nil {
		return err
	}
	if r.UploadID != "" { // an upload id without a resume record (an older cctvd's): abort it
		if m, ok, err := cat.MultipartOf(ctx, r.ID); err != nil {
			return err
		} else if !ok || m.UploadID != r.UploadID {
			if err := a.abort(ctx, r.Key, r.UploadID); err != nil {
				return err
			}
			if err := cat.SetUploadID(keep, r.ID, ""); err != nil {
				return err
			}
		}
	}
	f, err := os.Open(r.Path)
	if err != nil {
		if m, ok, _ := cat.MultipartOf(ctx, r.ID); ok && errors.Is(err, fs.ErrNotExist) {
			if derr := a.drop(ctx, r, m, "its file went away"); derr != nil {
				a.u.log.Warn().Err(derr).Msg("cannot abort the multipart upload yet")
			}
		}
		return fmt.Errorf("open %s: %w", r.Name(), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", r.Name(), err)
	}
	size := fi.Size()
	a.mtime = fi.ModTime()
	why, err := soundness(f, size, r.Bytes)
	if err != nil {
		return fmt.Errorf("read %s: %w", r.Name(), err)
	}
	if why != "" {
		if m, ok, _ := cat.MultipartOf(ctx, r.ID); ok {
			if derr := a.drop(ctx, r, m, "its file is damaged"); derr != nil {
				a.u.log.Warn().Err(derr).Msg("cannot abort the multipart upload yet")
			}
		}
		return a.quarantine(ctx, r, why)
	}
	sums, err := a.sums(ctx, r, f, fi)
	if err != nil {
		return err
	}
	err = a.ship(ctx, r, f, size, sums)
	if errors.Is(err, errFileChanged) {
		// The row's checksums no longer hold for the file: the next attempt
		// takes them again, from the file as it is (hash.go), and a
		// multipart upload begun from them is not resumed (its parts and
		// its record carry the old ones).
		if m, ok, _ := cat.MultipartOf(keep, r.ID); ok {
			if derr := a.drop(keep, r, m, "its file no longer gives the bytes its checksums were taken from"); derr != nil {
				a.u.log.Warn().Err(derr).Msg("cannot abort the multipart upload yet")
			}
		}
		if serr := cat.SetSums(keep, r.ID, sums.sha256, ""); serr != nil {
			return serr
		}
	}
	return err
}

// sums are the checksums r's upload starts from (hash.go): a multipart
// upload under way resumes with those it began with, while the file has
// the size and mtime it had (multipart.go); otherwise those its row keeps,
// taken as it closed; only without them, or for a server that keeps no
// checksums (which needs the MD5 first), is the file read whole before it
// is sent.
func (a *attempter) sums(ctx context.Context, r catalog.Record, f *os.File, fi os.FileInfo) (checksums, error) {
	size := fi.Size()
	sums, resumed, err := a.resumable(ctx, r, fi)
	if err != nil || resumed {
		return sums, err
	}
	part := partSize(size, a.cfg.PartSize)
	legacy := a.server.noChecksums.Load()
	if sums, ok := rowSums(r, size, part); ok && !legacy {
		return sums, nil
	}
	sums, err = hashFile(f, size, part, legacy)
	if err != nil {
		return sums, fmt.Errorf("read %s: %w", r.Name(), err)
	}
	if sums.sha256 != r.SHA256 || sums.crc64b64 != r.CRC64 {
		if r.SHA256 != "" && sums.sha256 != r.SHA256 {
			a.u.log.Warn().Str("segment", r.Name()).Msg("file changed since its checksums were taken; uploading what is on disk now")
		}
		if err := a.u.deps.Catalog.SetSums(context.WithoutCancel(ctx), r.ID, sums.sha256, sums.crc64b64); err != nil {
			return sums, err
		}
	}
	return sums, nil
}

// ship puts the file in S3 under r's key, never over different content.
// It asks S3 first (a HEAD) when the object may be there already (a row
// rebuilt from the disk, an attempt cut short) and when the server does not
// implement conditional writes; otherwise the write is conditional and S3
// answers 412 when the key is taken, and only then is it compared.
func (a *attempter) ship(ctx context.Context, r catalog.Record, f *os.File, size int64, sums checksums) error {
	keep := context.WithoutCancel(ctx)
	checkFirst := r.VerifyRemote || a.server.noConditional.Load()
	// At most: a write and a look at the key, then at each conflict key,
	// and a 501 on the way; the bound is a safety net.
	for range 2*(conflictNames+1) + 2 {
		if checkFirst {
			obj, found, err := a.head(ctx, r.Key)
			if err != nil {
				return err
			}
			if found {
				if how, same := obj.matches(size, sums); same {
					a.u.log.Info().Str("segment", r.Name()).Str("key", r.Key).Msg("already in S3, verified; not uploading again")
					return a.done(keep, r, obj.etag, how)
				}
				if r, err = a.divert(keep, r, sums); err != nil {
					return err
				}
				continue // the conflict key may be taken too (by an earlier attempt, another writer)
			}
			if r.VerifyRemote {
				if err := a.abortStale(ctx, r.ID, r.Key); err != nil {
					return err
				}
			}
		}
		if r.MustDecode {
			// Only now: a file S3 already has needs no decoding. The decode
			// lane checks it, outside the upload slots.
			if err := a.u.deps.Catalog.AwaitDecode(keep, r.ID); err != nil {
				return err
			}
			return errAwaitDecode
		}
		conditional := !a.server.noConditional.Load()
		etag, how, err := a.put(ctx, r, f, size, sums, conditional)
		switch {
		case err == nil:
			return a.confirm(ctx, r, size, sums, etag, how)
		case conditional && isPreconditionFailed(err):
			checkFirst = true // the key is taken: by what?
		case conditional && isNotImplemented(err):
			if !a.server.noConditional.Swap(true) {
				a.u.log.Warn().Msg("this S3 server does not implement conditional writes (If-None-Match); every upload now asks it first with a HEAD")
			}
			checkFirst = true
		default:
			return err
		}
	}
	return fmt.Errorf("upload %s: S3 refuses the conditional write and then holds nothing under the key", r.Key)
}

// divert sends the segment beside different content S3 holds under r.Key:
// under the next of its conflict keys (ConflictKeys) after r.Key. The
// objects are kept as they are; the conflict is logged, counted (once per
// segment) and recorded.
func (a *attempter) divert(ctx context.Context, r catalog.Record, sums checksums) (catalog.Record, error) {
	home := r.Key // the key the segment belongs under
	if r.ConflictKey != "" {
		home = r.ConflictKey
	}
	keys := ConflictKeys(home, sums.sha256)
	next := keys[0]
	for i, k := range keys {
		if k == r.Key {
			if i+1 == len(keys) {
				return r, fmt.Errorf("upload %s: %w", home, errConflictsTaken)
			}
			next = keys[i+1]
		}
	}
	if err := a.u.deps.Catalog.SetConflict(ctx, r.ID, next); err != nil {
		return r, err
	}
	a.u.log.Warn().Str("segment", r.Name()).Str("key", r.Key).Str("uploadedAs", next).
		Msg("S3 holds different content under this segment's key: it is kept as it is, and the segment goes up beside it")
	first := r.ConflictKey == ""
	r.ConflictKey, r.Key = home, next
	if first {
		a.u.conflicted(r)
	}
	return r, nil
}

// conflictNames is how many conflict keys a segment has.
const conflictNames = 5

// ConflictKey is where a segment goes when S3 holds different content
// under its key: beside it, named for the segment's content
// (segment.ConflictName, which segment.Parse reads back).
func ConflictKey(key, sha256 string) string { return segment.ConflictName(key, sha256) }

// ConflictKeys are the keys a segment whose content has this sha256 goes
// under, in turn, when S3 holds different content under its key, and then
// under each of these: <name>.conflict-<12 hex>.mp4 with the sha256's
// first 12 hex digits, then the next 12, and so on (five names in 64
// digits). Each is named for the content and read back by segment.Parse;
// none is ever written over.
func ConflictKeys(key, sha256 string) []string {
	keys := make([]string, 0, conflictNames)
	for i := 0; i+12 <= len(sha256) && len(keys) < conflictNames; i += 12 {
		keys = append(keys, segment.ConflictName(key, sha256[i:]))
	}
	return keys
}

// confirm checks with a HEAD that S3 holds the size and the sha256
// metadata (and, where it keeps one, the checksum) of the local file, then
// records the upload.
func (a *attempter) confirm(ctx context.Context, r catalog.Record, size int64, sums checksums, etag, how string) error {
	obj, found, err := a.head(ctx, r.Key)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("upload %s: %w: S3 does not hold it after the upload", r.Key, ErrVerify)
	}
	if _, same := obj.matches(size, sums); !same || obj.sha256Meta != sums.sha256 {
		return fmt.Errorf("upload %s: %w: S3 holds %d bytes with sha256 %q, the file %d bytes with sha256 %s",
			r.Key, ErrVerify, obj.size, obj.sha256Meta, size, sums.sha256)
	}
	if how == VerifiedMetadata && !a.server.weakVerify.Swap(true) {
		a.u.log.Warn().Msg("this S3 server returns no checksums and its ETags are not MD5s (encrypted objects): uploads are verified by size and metadata only")
	}
	return a.done(context.WithoutCancel(ctx), r, etag, how)
}

// done records a verified upload and, with clearAfterUpload, deletes the
// local file, only then.
func (a *attempter) done(ctx context.Context, r catalog.Record, etag, how string) error {
	if err := a.u.deps.Catalog.MarkUploadedTo(ctx, r.ID, a.cfg.Bucket, etag, how); err != nil {
		return err
	}
	a.u.log.Info().Str("segment", r.Name()).Str("key", r.Key).Str("verified", how).Msg("uploaded and verified")
	if !a.cfg.ClearAfterUpload {
		return nil
	}
	if err := os.Remove(r.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.u.log.Error().Err(err).Str("segment", r.Name()).Msg("cannot delete the uploaded file")
		return nil // uploaded all the same; retention will see the file
	}
	return a.u.deps.Catalog.MarkLocalDeleted(ctx, r.ID, catalog.CauseClearAfterUpload)
}
