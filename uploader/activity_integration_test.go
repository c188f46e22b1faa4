//go:build integration

package uploader

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/activity"
)

// An analysed segment's object carries its activity, so the bucket alone
// knows it; one never analysed carries none.
func TestUploadCarriesTheActivity(t *testing.T) {
	e := newEnv(t)
	active := e.addSegment("cam1", t0, 100<<10)
	unknown := e.addSegment("cam1", t0.Add(10*time.Second), 100<<10)
	sum := activity.Summary{Score: 0.25, Frames: 10, Intervals: []activity.Interval{
		{Start: 2 * time.Second, End: 4500 * time.Millisecond, Peak: 3 * time.Second, Level: 0.04}}}
	sum.Heatmap[17] = 128
	if err := e.cat.SetActivity(context.Background(), active.Path, active.Camera, active.Start, active.End, sum); err != nil {
		t.Fatal(err)
	}
	r := e.run(Config{}, e.clientC)
	r.await(t, 2, time.Minute)
	wantAct, wantHeat := activity.FormatMeta(sum)
	for _, tt := range []struct {
		key       string
		act, heat string
	}{{active.Key, wantAct, wantHeat}, {unknown.Key, "", ""}} {
		out, err := e.minio.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(tt.key)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Metadata[MetaActivity] != tt.act || out.Metadata[MetaActivityHeatmap] != tt.heat {
			t.Errorf("%s: activity metadata %q, %q; want %q, %q", tt.key, out.Metadata[MetaActivity], out.Metadata[MetaActivityHeatmap], tt.act, tt.heat)
		}
		if tt.act != "" {
			back, err := activity.ParseMeta(out.Metadata[MetaActivity], out.Metadata[MetaActivityHeatmap])
			if err != nil || back.Heatmap != sum.Heatmap || len(back.Intervals) != 1 || back.Intervals[0] != sum.Intervals[0] {
				t.Errorf("read back from S3: %+v, %v", back, err)
			}
		}
	}
}
