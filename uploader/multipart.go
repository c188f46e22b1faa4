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
	"github.com/cctvd/cctvd/internal/filesum"
)

// Multipart uploads are cctvd's own, so that none is ever sent twice: the
// upload S3 creates is recorded in the catalog (what the file was when it
// began, its checksums) before any part goes, and every part S3 confirms
// is recorded, with its CRC and ETag, as it completes. An upload cut short
// (a crash, a restart, a shutdown, the network) is resumed by its next
// attempt: ListParts says what S3 holds; a part recorded as confirmed that
// S3 holds with the size and CRC recorded (or, from a server that keeps no
// part checksums, the ETag recorded) is kept without reading it; each
// other part is read from its own stretch of the file for its CRC-64/NVME
// (one read from the disk, hash.go), kept if S3 holds it with that CRC (a
// part S3 confirmed and the record missed), else sent from the page cache
// that read filled (io.SectionReader), its CRC as a header. The
// completion asks for the full-object CRC (FULL_OBJECT), with the whole
// file's CRC taken with its sha256, and If-None-Match: *; the parts' CRCs
// must combine into that same CRC first.
//
// A resumed upload trusts its record while the file has the size and
// modification time recorded: the parts kept are not read again. That
// trust is checked all the same: the completion's full-object CRC, taken
// with the sha256 in the object's metadata, covers every byte, so a file
// changed under the same size and mtime fails verification
// (errFileChanged) instead of going up wrong. An upload is aborted only
// when its file changed (size or mtime, or its bytes no longer those of its
// checksums), went away, or its key was taken (a conflict); at start-up,
// every multipart upload under s3Path that no record names is aborted.

// maxUploadParts is S3's limit of parts in one upload.
const maxUploadParts = 10000

// partPlan is one part of a file.
type partPlan struct {
	number int32
	offset int64
	size   int64
	crc64  string // base64; empty until the part is read, when the file was not read whole first
}

// planParts cuts a file of size bytes into parts of partSize, with their
// CRCs where known (crcs: by part number - 1, or nil).
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

// held says whether S3 holds part p as the file has it, and as what: the
// same size and, where S3 keeps part checksums, the CRC crc (the part's,
// as recorded or as read now); without them, only a part recorded as
// confirmed (rec, known) whose ETag S3 still gives, with that CRC.
func held(p partPlan, crc string, s serverPart, on bool, rec catalog.Part, known bool) (catalog.Part, bool) {
	if !on || s.size != p.size || crc == "" {
		return catalog.Part{}, false
	}
	if s.crc64 != "" {
		if s.crc64 != crc {
			return catalog.Part{}, false
		}
	} else if !known || rec.Size != p.size || rec.ETag != s.etag || rec.CRC64 != crc {
		return catalog.Part{}, false
	}
	return catalog.Part{Number: p.number, Size: p.size, CRC64: crc, ETag: s.etag}, true
}

// reconcileParts says which parts S3 already holds as the record says
// (kept, not read again: the record is trusted while the file has its size
// and mtime), which of those the catalog must record again (fresh: S3's
// ETag is the one to complete with), and which must be read (rest): a part
// S3 lacks, holds with another size or checksum, or the record does not
// name. A part is planned with the CRC recorded when it was read before.
func reconcileParts(plan []partPlan, recorded []catalog.Part, server map[int32]serverPart) (kept, fresh []catalog.Part, rest []partPlan) {
	rec := make(map[int32]catalog.Part, len(recorded))
	for _, p := range recorded {
		rec[p.Number] = p
	}
	for _, p := range plan {
		r, known := rec[p.number]
		s, on := server[p.number]
		crc := p.crc64
		if known && crc == "" {
			crc = r.CRC64
		}
		part, ok := held(p, crc, s, on, r, known && r.CRC64 == crc)
		if !ok || !known {
			rest = append(rest, p)
			continue
		}
		kept = append(kept, part)
		if r != part {
			fresh = append(fresh, part)
		}
	}
	return kept, fresh, rest
}

// sumsOf are the checksums a resume record keeps of its file.
func sumsOf(m catalog.Multipart) (checksums, bool) {
	raw, err := hex.DecodeString(m.SHA256)
	if err != nil || len(raw) != 32 || m.CRC64 == "" || m.PartSize <= 0 {
		return checksums{}, false
	}
	if _, err := filesum.ParseCRC64(m.CRC64); err != nil {
		return checksums{}, false
	}
	c := checksums{sha256: m.SHA256, sha256b64: base64.StdEncoding.EncodeToString(raw), crc64b64: m.CRC64,
		partSize: m.PartSize, multipartETag: m.ETag}
	if int64(len(m.PartCRCs)) == (m.FileSize+m.PartSize-1)/m.PartSize {
		c.partCRC64 = m.PartCRCs // read whole before it began
	}
	return c, true
}

// resumable is the record of r's multipart upload when it may be resumed
// with the file as it is (same size and mtime); a record that may not is
// aborted and forgotten. It returns the record's checksums, so the file
// is not read whole again.
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
	case m.SHA256 != r.SHA256:
		// The row's checksum is not the one the upload began from: the
		// file came back with other content (Reconcile forgets its
		// checksum) or was hashed again since. Never complete an object
		// from the old file's parts.
		err = a.drop(ctx, r, m, "its file's checksum changed since it began")
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
	if ok && (rec.Key != r.Key || rec.Bucket != a.cfg.Bucket || rec.SHA256 != sums.sha256 || rec.CRC64 != sums.crc64b64 || rec.PartSize != sums.partSize) {
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
	kept, fresh, rest := reconcileParts(planParts(size, sums.partSize, sums.partCRC64), rec.Parts, server)
	for _, p := range fresh {
		if err := cat.AddPart(keep, r.ID, p); err != nil {
			return nil, err
		}
	}
	if ok {
		a.u.log.Info().Str("segment", r.Name()).Int("partsKept", len(kept)).Int("partsToSend", len(rest)).Msg("multipart upload reconciled with S3")
	}
	sent, err := a.sendParts(ctx, r, f, rec.UploadID, rest, server)
	parts := append(kept, sent...)
	slices.SortFunc(parts, func(x, y catalog.Part) int { return int(x.Number - y.Number) })
	if err == nil {
		err = wholeCRC(parts, sums.crc64b64)
	}
	if errors.Is(err, errFileChanged) { // these parts will never make the object its checksums describe
		if derr := a.drop(ctx, r, rec, "its file changed"); derr != nil {
			a.u.log.Warn().Err(derr).Msg("cannot abort the multipart upload yet")
		}
	}
	if err != nil {
		return nil, err // otherwise the record stays: the next attempt resumes
	}
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
		err = mismatch(err)
		if isPreconditionFailed(err) || errors.Is(err, errFileChanged) { // these parts will never complete under this key
			if derr := a.drop(ctx, r, rec, "S3 holds an object under its key, or refused its parts"); derr != nil {
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

// wholeCRC checks that the parts' CRCs, in order, combine into the whole
// file's (want, base64): that the bytes the object will hold are those
// its checksums were taken from, before S3 is asked to complete it.
func wholeCRC(parts []catalog.Part, want string) error {
	var whole uint64
	for _, p := range parts {
		crc, err := filesum.ParseCRC64(p.CRC64)
		if err != nil {
			return err
		}
		whole = filesum.CombineCRC64(whole, crc, p.Size)
	}
	if got := filesum.CRC64Base64(whole); got != want {
		return fmt.Errorf("%w: its parts' CRC-64/NVME make %s, its checksums say %s", errFileChanged, got, want)
	}
	return nil
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

// sendParts reads and sends the parts, PartConcurrency at once: each is
// read for its CRC (unless it is planned with one) just before it goes,
// kept if S3 holds it with that CRC already (a part S3 confirmed and the
// record missed), else sent from the page cache the read filled. Each part
// S3 confirms is recorded by one recorder beside the senders, which go on
// to the next part meanwhile (a record costs a flush of the catalog, as
// long as a few MB on the wire): a part S3 confirmed whose record a crash
// cut short is found again on resume (ListParts), read for its CRC and
// kept, not sent. Every record is written before sendParts returns. The
// first failure stops the rest.
func (a *attempter) sendParts(ctx context.Context, r catalog.Record, f *os.File, uploadID string, parts []partPlan,
	server map[int32]serverPart) ([]catalog.Part, error) {
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
	records := make(chan catalog.Part, len(parts)) // never blocks a sender
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for part := range records {
			if err := a.u.deps.Catalog.AddPart(keep, r.ID, part); err != nil {
				fail(err)
				continue
			}
			mu.Lock()
			sent = append(sent, part)
			mu.Unlock()
		}
	}()
	work := make(chan partPlan)
	var wg sync.WaitGroup
	for range min(a.cfg.PartConcurrency, max(len(parts), 1)) {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for p := range work {
				if p.crc64 == "" {
					crc, err := partCRC(f, p, buf)
					if err != nil {
						fail(fmt.Errorf("read %s part %d: %w", r.Name(), p.number, err))
						continue
					}
					p.crc64 = crc
				}
				s, on := server[p.number]
				part, ok := held(p, p.crc64, s, on, catalog.Part{}, false)
				if !ok {
					var err error
					if part, err = a.sendPart(ctx, r, f, uploadID, p); err != nil {
						fail(err)
						continue
					}
				}
				records <- part
			}
		})
	}
	for _, p := range parts {
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
	close(records)
	<-recorded
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return sent, first
}

// partCRC reads part p of f for its CRC-64/NVME, base64.
func partCRC(f *os.File, p partPlan, buf []byte) (string, error) {
	var crc uint64
	for off := p.offset; off < p.offset+p.size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), p.offset+p.size-off)], off)
		crc = filesum.UpdateCRC64(crc, buf[:n])
		off += int64(n)
		if err != nil && (!errors.Is(err, io.EOF) || off < p.offset+p.size) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the file is shorter than when it was planned
			}
			return "", err
		}
	}
	return filesum.CRC64Base64(crc), nil
}

// sendPart sends one part and checks S3's answer.
func (a *attempter) sendPart(ctx context.Context, r catalog.Record, f *os.File, uploadID string, p partPlan) (catalog.Part, error) {
	out, err := a.s3.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(a.cfg.Bucket), Key: aws.String(r.Key), UploadId: aws.String(uploadID),
		PartNumber: aws.Int32(p.number), ContentLength: aws.Int64(p.size),
		Body: io.NewSectionReader(f, p.offset, p.size), // seekable: the SDK rewinds it to retry
		// Known before the send, so sent as a header, never an aws-chunked trailer.
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme, ChecksumCRC64NVME: aws.String(p.crc64),
	}, unsignedPayload)
	if err != nil {
		return catalog.Part{}, fmt.Errorf("upload %s part %d: %w", r.Key, p.number, mismatch(err))
	}
	if got := aws.ToString(out.ChecksumCRC64NVME); got != "" && got != p.crc64 {
		return catalog.Part{}, fmt.Errorf("upload %s part %d: %w: S3's CRC-64/NVME %s, the file's %s", r.Key, p.number, ErrVerify, got, p.crc64)
	}
	a.u.partSent(p.size)
	return catalog.Part{Number: p.number, Size: p.size, CRC64: p.crc64, ETag: aws.ToString(out.ETag)}, nil
}
