package uploader

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cctvd/cctvd/catalog"
)

// Multipart uploads are cctvd's own, so that none is ever sent twice: the
// upload S3 creates is recorded in the catalog (what the file was when it
// began, its checksums) before any part goes, and every part S3 confirms
// is recorded as it completes. An upload cut short (a crash, a restart, a
// shutdown, the network) is resumed by its next attempt: ListParts says
// what S3 holds, each part it holds with the size and checksum planned
// (or, from a server that keeps no part checksums, the ETag recorded) is
// kept, and only the others are sent, each from its own stretch of the
// file (io.SectionReader), with its CRC-64/NVME computed when the file was
// hashed, as a header. The completion asks for the full-object CRC
// (FULL_OBJECT) and If-None-Match: *.
//
// A resumed upload does not hash the file again: its record holds the
// checksums, and the file is trusted to be what was hashed while its size
// and modification time are those recorded. That trust is checked all the
// same: S3 refuses a part whose bytes do not match the CRC it carries, and
// the completion's full-object CRC covers every byte, so a file changed
// under the same size and mtime fails verification instead of going up
// wrong (and its next attempt hashes it again). An upload is aborted only
// when its file changed (size or mtime, or the sha256 of a new hashing
// pass), went away, or its key was taken (a conflict); at start-up, every
// multipart upload under s3Path that no record names is aborted.

// maxUploadParts is S3's limit of parts in one upload.
const maxUploadParts = 10000

// partPlan is one part as the file's hashing planned it.
type partPlan struct {
	number int32
	offset int64
	size   int64
	crc64  string // base64
}

// planParts cuts a file of size bytes into parts of partSize.
func planParts(size, partSize int64, crcs []string) []partPlan {
	var out []partPlan
	for i, off := 0, int64(0); off < size; i, off = i+1, off+partSize {
		p := partPlan{number: int32(i + 1), offset: off, size: min(partSize, size-off)}
		if i < len(crcs) {
			p.crc64 = crcs[i]
		}
		out = append(out, p)
	}
	return out
}

// serverPart is a part as ListParts shows it.
type serverPart struct {
	size  int64
	etag  string
	crc64 string // empty from a server that keeps no part checksums
}

// reconcileParts says which planned parts S3 already holds as planned
// (kept), which of those the catalog did not record yet (fresh: S3
// confirmed them, the record was cut short), and which must be sent: a
// part S3 lacks, or holds with another size or checksum, or (without a
// checksum) with an ETag other than the one recorded.
func reconcileParts(plan []partPlan, recorded []catalog.Part, server map[int32]serverPart) (kept, fresh []catalog.Part, send []partPlan) {
	rec := make(map[int32]catalog.Part, len(recorded))
	for _, p := range recorded {
		rec[p.Number] = p
	}
	for _, p := range plan {
		s, on := server[p.number]
		r, known := rec[p.number]
		same := on && s.size == p.size
		switch {
		case !same:
		case s.crc64 != "":
			same = s.crc64 == p.crc64
		default:
			same = known && r.Size == p.size && r.ETag == s.etag && r.CRC64 == p.crc64
		}
		if !same {
			send = append(send, p)
			continue
		}
		part := catalog.Part{Number: p.number, Size: p.size, CRC64: p.crc64, ETag: s.etag}
		kept = append(kept, part)
		if !known || r != part {
			fresh = append(fresh, part)
		}
	}
	return kept, fresh, send
}

// sumsOf are the checksums a resume record keeps of its file.
func sumsOf(m catalog.Multipart) (checksums, bool) {
	raw, err := hex.DecodeString(m.SHA256)
	if err != nil || len(raw) != 32 || m.CRC64 == "" || m.PartSize <= 0 || int64(len(m.PartCRCs)) != (m.FileSize+m.PartSize-1)/m.PartSize {
		return checksums{}, false
	}
	return checksums{sha256: m.SHA256, sha256b64: base64.StdEncoding.EncodeToString(raw), crc64b64: m.CRC64,
		partCRC64: m.PartCRCs, partSize: m.PartSize, multipartETag: m.ETag}, true
}

// resumable is the record of r's multipart upload when it may be resumed
// with the file as it is (same size and mtime); a record that may not is
// aborted and forgotten. It returns the record's checksums, so the file
// is not hashed again.
func (a *attempter) resumable(ctx context.Context, r catalog.Record, fi os.FileInfo) (checksums, bool, error) {
	m, ok, err := a.u.deps.Catalog.MultipartOf(ctx, r.ID)
	if err != nil || !ok {
		return checksums{}, false, err
	}
	sums, valid := sumsOf(m)
	switch {
	case !valid:
		err = a.drop(ctx, r, m, "its record is incomplete")
	case m.FileSize != fi.Size() || !m.MTime.Equal(fi.ModTime()):
		err = a.drop(ctx, r, m, "the file changed since it began")
	default:
		a.u.log.Info().Str("segment", r.Name()).Int("partsRecorded", len(m.Parts)).Msg("resuming a multipart upload")
		return sums, true, nil
	}
	return checksums{}, false, err
}

// drop aborts a recorded multipart upload and forgets it.
func (a *attempter) drop(ctx context.Context, r catalog.Record, m catalog.Multipart, why string) error {
	a.u.log.Info().Str("segment", r.Name()).Str("why", why).Msg("aborting its multipart upload")
	if err := a.abortIn(ctx, m.Bucket, m.Key, m.UploadID); err != nil {
		return err
	}
	return a.u.deps.Catalog.EndMultipart(context.WithoutCancel(ctx), r.ID)
}

// multipart sends the file under r.Key as a multipart upload, resuming the
// one recorded for it.
func (a *attempter) multipart(ctx context.Context, r catalog.Record, f *os.File, size int64, sums checksums,
	meta map[string]string, ifNoneMatch *string) (*s3.CompleteMultipartUploadOutput, error) {
	cat := a.u.deps.Catalog
	keep := context.WithoutCancel(ctx)
	rec, ok, err := cat.MultipartOf(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if ok && (rec.Key != r.Key || rec.Bucket != a.cfg.Bucket || rec.SHA256 != sums.sha256 || rec.PartSize != sums.partSize) {
		if err := a.drop(ctx, r, rec, "the segment goes under another key, or its file changed"); err != nil {
			return nil, err
		}
		ok = false
	}
	var server map[int32]serverPart
	if ok {
		server, err = a.listParts(ctx, r.Key, rec.UploadID)
		var nsu *types.NoSuchUpload
		switch {
		case errors.As(err, &nsu):
			a.u.log.Info().Str("segment", r.Name()).Msg("S3 no longer has the multipart upload (expired or aborted elsewhere): starting it again")
			if err := cat.EndMultipart(keep, r.ID); err != nil {
				return nil, err
			}
			ok = false
		case err != nil:
			return nil, err
		}
	}
	if !ok {
		out, err := a.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(a.cfg.Bucket), Key: aws.String(r.Key), ContentType: aws.String("video/mp4"), Metadata: meta,
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme, ChecksumType: types.ChecksumTypeFullObject,
		}, unsignedPayload)
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", r.Key, err)
		}
		rec = catalog.Multipart{SegmentID: r.ID, UploadID: aws.ToString(out.UploadId), Key: r.Key, Bucket: a.cfg.Bucket,
			PartSize: sums.partSize, FileSize: size, MTime: a.mtime, SHA256: sums.sha256, CRC64: sums.crc64b64,
			PartCRCs: sums.partCRC64, ETag: sums.multipartETag}
		if err := cat.StartMultipart(keep, rec); err != nil {
			if aerr := a.abort(ctx, r.Key, rec.UploadID); aerr != nil {
				a.u.log.Warn().Err(aerr).Msg("cannot abort a multipart upload the catalog could not record")
			}
			return nil, err
		}
	}
	kept, fresh, send := reconcileParts(planParts(size, sums.partSize, sums.partCRC64), rec.Parts, server)
	for _, p := range fresh {
		if err := cat.AddPart(keep, r.ID, p); err != nil {
			return nil, err
		}
	}
	if ok {
		a.u.log.Info().Str("segment", r.Name()).Int("partsKept", len(kept)).Int("partsToSend", len(send)).Msg("multipart upload reconciled with S3")
	}
	sent, err := a.sendParts(ctx, r, f, rec.UploadID, send)
	if err != nil {
		return nil, err // the record stays: the next attempt resumes
	}
	parts := append(kept, sent...)
	slices.SortFunc(parts, func(x, y catalog.Part) int { return int(x.Number - y.Number) })
	done := make([]types.CompletedPart, 0, len(parts))
	for _, p := range parts {
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag), ChecksumCRC64NVME: aws.String(p.CRC64)})
	}
	out, err := a.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(a.cfg.Bucket), Key: aws.String(r.Key), UploadId: aws.String(rec.UploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
		ChecksumType:    types.ChecksumTypeFullObject, ChecksumCRC64NVME: aws.String(sums.crc64b64),
		IfNoneMatch: ifNoneMatch,
	})
	if err != nil {
		if isPreconditionFailed(err) { // the key is taken: these parts will never complete under it
			if derr := a.drop(ctx, r, rec, "S3 holds an object under its key"); derr != nil {
				a.u.log.Warn().Err(derr).Msg("cannot abort the multipart upload yet")
			}
		}
		return nil, fmt.Errorf("upload %s: %w", r.Key, err)
	}
	if err := cat.EndMultipart(keep, r.ID); err != nil {
		return nil, err
	}
	return out, nil
}

// listParts is every part S3 holds of an upload.
func (a *attempter) listParts(ctx context.Context, key, uploadID string) (map[int32]serverPart, error) {
	out := map[int32]serverPart{}
	in := &s3.ListPartsInput{Bucket: aws.String(a.cfg.Bucket), Key: aws.String(key), UploadId: aws.String(uploadID)}
	for range maxUploadParts { // a bound on the pages, as a safety net
		page, err := a.s3.ListParts(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list the parts of %s: %w", key, err)
		}
		for _, p := range page.Parts {
			out[aws.ToInt32(p.PartNumber)] = serverPart{size: aws.ToInt64(p.Size), etag: aws.ToString(p.ETag), crc64: aws.ToString(p.ChecksumCRC64NVME)}
		}
		if !aws.ToBool(page.IsTruncated) || page.NextPartNumberMarker == nil {
			break
		}
		in.PartNumberMarker = page.NextPartNumberMarker
	}
	return out, nil
}

// sendParts sends the parts, PartConcurrency at once, each recorded as S3
// confirms it; the first failure stops the rest.
func (a *attempter) sendParts(ctx context.Context, r catalog.Record, f *os.File, uploadID string, send []partPlan) ([]catalog.Part, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keep := context.WithoutCancel(ctx)
	var mu sync.Mutex
	var sent []catalog.Part
	var first error
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	work := make(chan partPlan)
	var wg sync.WaitGroup
	for range min(a.cfg.PartConcurrency, max(len(send), 1)) {
		wg.Go(func() {
			for p := range work {
				out, err := a.s3.UploadPart(ctx, &s3.UploadPartInput{
					Bucket: aws.String(a.cfg.Bucket), Key: aws.String(r.Key), UploadId: aws.String(uploadID),
					PartNumber: aws.Int32(p.number), ContentLength: aws.Int64(p.size),
					Body: io.NewSectionReader(f, p.offset, p.size), // seekable: the SDK rewinds it to retry
					// Precomputed, so sent as a header, never an aws-chunked trailer.
					ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme, ChecksumCRC64NVME: aws.String(p.crc64),
				}, unsignedPayload)
				if err != nil {
					fail(fmt.Errorf("upload %s part %d: %w", r.Key, p.number, err))
					continue
				}
				if got := aws.ToString(out.ChecksumCRC64NVME); got != "" && got != p.crc64 {
					fail(fmt.Errorf("upload %s part %d: %w: S3's CRC-64/NVME %s, the file's %s", r.Key, p.number, ErrVerify, got, p.crc64))
					continue
				}
				part := catalog.Part{Number: p.number, Size: p.size, CRC64: p.crc64, ETag: aws.ToString(out.ETag)}
				if err := a.u.deps.Catalog.AddPart(keep, r.ID, part); err != nil {
					fail(err)
					continue
				}
				a.u.partSent(p.size)
				mu.Lock()
				sent = append(sent, part)
				mu.Unlock()
			}
		})
	}
	for _, p := range send {
		select {
		case work <- p:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return sent, first
}
