//go:build integration

package rebuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// A catalog rebuilt from S3 knows the activity the objects carry; an
// object whose activity metadata is garbage is imported without it.
func TestRebuildRestoresActivity(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t1 := now.Add(-48 * time.Hour)
	sum := activity.Summary{Score: 0.3, Frames: 10, Intervals: []activity.Interval{
		{Start: time.Second, End: 4 * time.Second, Peak: 2 * time.Second, Level: 0.05}}}
	sum.Heatmap[40] = 99
	act, heat := activity.FormatMeta(sum)
	put := func(rel, act, heat string) {
		body := []byte("footage " + rel)
		info, _ := segment.Parse(filepath.Base(rel))
		s := sha256.Sum256(body)
		meta := map[string]string{uploader.MetaCamera: info.Camera, uploader.MetaFeedID: info.FeedID,
			uploader.MetaStart: info.Start.Format(uploader.MetaTimeLayout), uploader.MetaEnd: info.End.Format(uploader.MetaTimeLayout),
			uploader.MetaSHA256: hex.EncodeToString(s[:])}
		if act != "" {
			meta[uploader.MetaActivity], meta[uploader.MetaActivityHeatmap] = act, heat
		}
		if _, err := e.minio.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("rec/" + rel),
			Body: bytes.NewReader(body), Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	active, still, garbled := relOf("door", t1), relOf("door", t1.Add(10*time.Second)), relOf("door", t1.Add(20*time.Second))
	put(active, act, heat)
	put(still, "", "")
	put(garbled, "v1 s=banana", "")
	if err := Request(ctx, e.cat); err != nil {
		t.Fatal(err)
	}
	rb := e.rebuilder(2)
	if err := rb.Run(ctx); err != nil || rb.Status().State != Finished {
		t.Fatalf("rebuild: %v, %+v\n%s", err, rb.Status(), e.logs.String())
	}
	for rel, want := range map[string]bool{active: true, still: false, garbled: false} {
		r, err := e.cat.ByPath(ctx, filepath.Join(e.save, rel))
		if err != nil {
			t.Fatalf("%s: no row: %v", rel, err)
		}
		got, ok, err := e.cat.SegmentActivity(ctx, r.ID)
		if err != nil || ok != want {
			t.Errorf("%s: activity %v, %v; want %v", rel, ok, err, want)
		}
		if want && (got.Score != 0.3 || got.Heatmap != sum.Heatmap || !slices.Equal(got.Intervals, sum.Intervals)) {
			t.Errorf("%s: activity %+v, want %+v", rel, got, sum)
		}
	}
	ivs, err := e.cat.Activity(ctx, "door", t1, t1.Add(time.Minute))
	if err != nil || len(ivs) != 1 || !ivs[0].Start.Equal(t1.Add(time.Second)) || !ivs[0].End.Equal(t1.Add(4*time.Second)) {
		t.Errorf("the camera's activity after the rebuild: %+v, %v", ivs, err)
	}
	if !bytes.Contains([]byte(e.logs.String()), []byte("activity metadata is unreadable")) {
		t.Errorf("the garbled activity is not logged:\n%s", e.logs.String())
	}
}
