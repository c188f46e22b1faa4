package export

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// Catalog is what a box's exports need of the catalog.
type Catalog interface {
	InRange(ctx context.Context, camera string, from, to time.Time) ([]catalog.Record, error)
	Before(ctx context.Context, camera string, t time.Time) (catalog.Record, error)
	After(ctx context.Context, camera string, t time.Time) (catalog.Record, error)
	Gaps(ctx context.Context, camera string, from, to time.Time) ([]catalog.Gap, error)
}

// FromRecord is a catalog row as an export source.
func FromRecord(r catalog.Record) Segment {
	s := Segment{Camera: r.Camera, FeedID: r.FeedID, Start: millis(r.Start), End: millis(r.End), Name: r.Name(), Key: r.Key,
		Bucket: r.Bucket, Bytes: r.Bytes, SHA256: r.SHA256, ETag: strings.Trim(r.ETag, `"`), Uploaded: r.Upload == catalog.Uploaded, Sub: r.Sub}
	if r.Local == catalog.Present {
		s.Path = r.Path
	}
	return s
}

// FromCatalog returns the box's segments of camera overlapping [from, to)
// and the gap log's entries there.
func FromCatalog(ctx context.Context, cat Catalog, camera string, from, to time.Time) ([]Segment, []catalog.Gap, error) {
	recs, err := cat.InRange(ctx, camera, from, to)
	if err != nil {
		return nil, nil, err
	}
	segs := make([]Segment, 0, len(recs))
	for _, r := range recs {
		segs = append(segs, FromRecord(r))
	}
	gaps, err := cat.Gaps(ctx, camera, from, to)
	if err != nil {
		return nil, nil, err
	}
	return segs, gaps, nil
}

// otherBucket is a source's bucket for the manifest: "" when it is the
// manifest's own (or not known, and so the configured one).
func otherBucket(source, manifest string) string {
	if source == manifest {
		return ""
	}
	return source
}

// Nearest returns a *NoFootageError naming the box's nearest footage
// before from and after to.
func Nearest(ctx context.Context, cat Catalog, camera string, from, to time.Time) error {
	e := &NoFootageError{}
	if r, err := cat.Before(ctx, camera, from); err == nil {
		e.Before = &Range{From: millis(r.Start), To: millis(r.End)}
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	if r, err := cat.After(ctx, camera, to); err == nil {
		e.After = &Range{From: millis(r.Start), To: millis(r.End)}
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	return e
}

// ListBucket lists camera's segments in the bucket that may overlap
// [from, to), from their keys alone (<prefix>/<camera>/<YYYY-MM-DD>/<name>):
// no catalog, no box. It lists the day folders the range touches and the
// day before (a segment that starts then may reach into the range). Times
// come from the names, to the second; the objects' metadata refines them
// when they are read.
func ListBucket(ctx context.Context, api S3API, bucket, prefix, camera string, from, to time.Time) ([]Segment, error) {
	var out []Segment
	first := from.UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	for day := first; day.Before(to); day = day.AddDate(0, 0, 1) {
		dir := uploader.Key(strings.Trim(prefix, "/"), layout.DayRel(camera, day)) + "/"
		p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(dir)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, dir, err)
			}
			for _, o := range page.Contents {
				key := aws.ToString(o.Key)
				info, err := segment.Parse(path.Base(key))
				if err != nil || info.Camera != camera || path.Dir(key)+"/" != dir {
					continue // not a segment of this camera
				}
				// Names are rounded to the second: a second of slack.
				if !info.End.After(from.Add(-time.Second)) || !info.Start.Before(to.Add(time.Second)) {
					continue
				}
				out = append(out, Segment{Camera: info.Camera, FeedID: info.FeedID, Start: info.Start, End: info.End,
					Name: path.Base(key), Key: key, Bucket: bucket, Bytes: aws.ToInt64(o.Size), ETag: strings.Trim(aws.ToString(o.ETag), `"`), Uploaded: true})
			}
		}
	}
	return out, nil
}
