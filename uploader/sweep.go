package uploader

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// cleanUpInterrupted deals, at start, with the uploads the last stop cut
// short: a multipart upload the catalog records resumes at its segment's
// next attempt; one it does not record (a row's upload id left by an
// older cctvd) is aborted; a record whose segment no longer waits (the
// file deleted, the row gone) is aborted and forgotten. Then every
// multipart upload under s3Path that no record names is aborted (sweep).
// When S3 does not answer now, each is dealt with at its next attempt.
func (u *Uploader) cleanUpInterrupted(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	a := u.attempter()
	recs, err := u.deps.Catalog.Interrupted(ctx)
	if err != nil {
		u.log.Error().Err(err).Msg("cannot read interrupted uploads")
		return
	}
	records, err := u.deps.Catalog.Multiparts(ctx)
	if err != nil {
		u.log.Error().Err(err).Msg("cannot read the multipart uploads under way")
		return
	}
	known := map[string]bool{} // bucket/key/upload id
	recorded := map[int64]catalog.Multipart{}
	for _, m := range records {
		recorded[m.SegmentID] = m
	}
	if len(recs) > 0 {
		u.log.Info().Int("segments", len(recs)).Msg("uploads were interrupted by the last stop; they will be checked, and multipart uploads resumed")
	}
	for _, r := range recs {
		if m, ok := recorded[r.ID]; ok && m.UploadID == r.UploadID {
			continue // resumes
		}
		if r.UploadID == "" {
			continue
		}
		if err := a.abort(cctx, r.Key, r.UploadID); err != nil {
			u.log.Warn().Err(err).Str("segment", r.Name()).Msg("cannot abort an interrupted multipart upload yet")
			continue
		}
		if err := u.deps.Catalog.SetUploadID(ctx, r.ID, ""); err != nil {
			u.log.Error().Err(err).Msg("cannot clear the multipart upload id")
		}
	}
	for _, m := range records {
		r, err := u.deps.Catalog.Get(ctx, m.SegmentID)
		if err == nil && r.Local == catalog.Present && r.Upload != catalog.Uploaded {
			known[m.Bucket+"/"+m.Key+"/"+m.UploadID] = true
			continue
		}
		if err != nil && !errors.Is(err, catalog.ErrNotFound) {
			u.log.Error().Err(err).Msg("cannot read a multipart upload's segment")
			return // keep every upload: nothing is aborted on a guess
		}
		if err := a.abortIn(cctx, m.Bucket, m.Key, m.UploadID); err != nil {
			u.log.Warn().Err(err).Str("key", m.Key).Msg("cannot abort the multipart upload of a segment that no longer waits, yet")
			known[m.Bucket+"/"+m.Key+"/"+m.UploadID] = true
			continue
		}
		if err := u.deps.Catalog.EndMultipart(ctx, m.SegmentID); err != nil {
			u.log.Error().Err(err).Msg("cannot forget a multipart upload")
		}
	}
	u.sweep(cctx, a, known)
}

// sweep aborts the multipart uploads under s3Path (in the configured
// bucket) that no record names: parts a crash left between S3 creating an
// upload and the catalog recording it, or uploads of a catalog since
// rebuilt. Only keys cctvd would make are touched: s3Path, then
// <camera>/<YYYY-MM-DD>/<file> named as cctvd names segments, of that
// camera and day (so a box under a longer prefix, rec/box2 beside rec, is
// left alone); with no s3Path, only keys of the cameras this catalog
// holds footage of. Another box may share the bucket: under another
// prefix, or with cameras of other names.
func (u *Uploader) sweep(ctx context.Context, a *attempter, known map[string]bool) {
	prefix := ""
	if a.cfg.Prefix != "" {
		prefix = a.cfg.Prefix + "/"
	}
	var cameras map[string]bool
	if prefix == "" {
		cl, ok := u.deps.Catalog.(interface {
			Cameras(ctx context.Context) ([]string, error)
		})
		if !ok {
			return
		}
		names, err := cl.Cameras(ctx)
		if err != nil {
			u.log.Warn().Err(err).Msg("cannot list the catalog's cameras: multipart uploads no record names are left in S3")
			return
		}
		cameras = map[string]bool{}
		for _, n := range names {
			cameras[n] = true
		}
	}
	ours := func(key string) bool {
		rest, ok := strings.CutPrefix(key, prefix)
		parts := strings.Split(rest, "/")
		if !ok || len(parts) != 3 {
			return false
		}
		name := parts[2]
		if base, _, found := strings.Cut(name, ".conflict-"); found { // <name>.conflict-<12 hex>.mp4
			name = base + ".mp4"
		}
		seg, err := segment.Parse(name)
		if err != nil || seg.Camera != parts[0] || layout.Day(seg.Start) != parts[1] {
			return false
		}
		return prefix != "" || cameras[seg.Camera]
	}
	list := func(p string) ([][2]string, error) {
		var out [][2]string
		in := &s3.ListMultipartUploadsInput{Bucket: aws.String(a.cfg.Bucket)}
		if p != "" {
			in.Prefix = aws.String(p)
		}
		for range 1000 { // pages of up to 1,000: a bound as a safety net
			page, err := a.s3.ListMultipartUploads(ctx, in)
			if err != nil {
				return nil, err
			}
			for _, up := range page.Uploads {
				out = append(out, [2]string{aws.ToString(up.Key), aws.ToString(up.UploadId)})
			}
			if !aws.ToBool(page.IsTruncated) {
				break
			}
			in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
		}
		return out, nil
	}
	ups, err := list(prefix)
	if err == nil && len(ups) == 0 && prefix != "" {
		// MinIO lists uploads by a prefix only when it is a whole key:
		// list them all, and keep to ours.
		ups, err = list("")
	}
	if err != nil {
		u.log.Info().Err(err).Msg("cannot list the multipart uploads left on S3 yet; the next start looks again")
		return
	}
	aborted := 0
	for _, up := range ups {
		key, id := up[0], up[1]
		if !ours(key) || known[a.cfg.Bucket+"/"+key+"/"+id] {
			continue
		}
		if err := a.abort(ctx, key, id); err != nil {
			u.log.Warn().Err(err).Str("key", key).Msg("cannot abort a multipart upload no record names, yet")
			continue
		}
		aborted++
	}
	if aborted > 0 {
		u.log.Info().Int("uploads", aborted).Msg("aborted the multipart uploads under s3Path that no record names")
	}
}
