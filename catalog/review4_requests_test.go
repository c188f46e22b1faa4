package catalog

import (
	"context"
	"strings"
	"testing"
)

// TestUploadRequestQueriesBoundTheRange: the queries over the open upload
// requests (the queue's first class, read at every fill, and the API's
// list) find a request's segments by the camera's index bounded on both
// sides of the range. With only start_ns < to, each request reads every
// row of its camera from its first recording on: with 200,000 rows of one
// camera and 64 requests (MaxOpenUploadRequests), RequestedDue took 8 s
// and UploadRequests 11 s on the review box, at every queue fill.
func TestUploadRequestQueriesBoundTheRange(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	for i := range 50 {
		writeSegment(t, save, "cam1", t0.Add(-time10s(i)), 1)
	}
	if _, err := c.Reconcile(ctx, key); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"RequestedDue", `SELECT ` + columns + ` FROM segments ` + qRequestedDue, []any{1, 2, 3}},
		{"UploadRequests", qUploadRequests, nil},
	} {
		plan := queryPlan(t, c, q.sql, q.args...)
		for _, step := range plan {
			if strings.Contains(step, "segments_camera") && !strings.Contains(step, "start_ns>? AND start_ns<?") {
				t.Errorf("%s reads the camera's rows from its first on: %s", q.name, step)
			}
		}
	}
}
