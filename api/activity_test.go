package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/export"
)

func TestActivityRoutes(t *testing.T) {
	var e *env
	e = newEnv(t, Config{Listen: "127.0.0.1:0"}, func(d *Deps) {
		d.Activity = func(ctx context.Context, camera string, from, to time.Time, limit int) ([]catalog.ActivityInterval, error) {
			return e.cat.ActivityUpTo(ctx, camera, from, to, limit)
		}
	})
	t0 := time.Date(2026, 1, 7, 8, 0, 0, 0, time.UTC)
	for _, x := range []struct {
		cam   string
		start time.Time
		ivl   activity.Interval
	}{
		{"door", t0, activity.Interval{Start: 2 * time.Second, End: 5 * time.Second, Peak: 3 * time.Second, Level: 0.1}},
		{"gate", t0, activity.Interval{Start: time.Second, End: 9 * time.Second, Peak: 4 * time.Second, Level: 0.3}},
		{"door", t0.Add(time.Hour), activity.Interval{Start: 0, End: time.Second, Peak: 0, Level: 0.05}},
	} {
		r := e.addFile(t, x.cam, x.start, []byte("x"))
		if err := e.cat.SetActivity(context.Background(), r.Path, x.cam, r.Start, r.End,
			activity.Summary{Score: 0.3, Frames: 10, Intervals: []activity.Interval{x.ivl}}); err != nil {
			t.Fatal(err)
		}
	}
	type answer struct {
		Intervals []Interval `json:"intervals"`
		Truncated bool       `json:"truncated"`
	}
	get := func(path string) (int, answer) {
		rec := e.do(request{method: "GET", path: path})
		var a answer
		json.Unmarshal(rec.Body.Bytes(), &a)
		return rec.Code, a
	}
	code, a := get("/api/v1/cameras/door/activity?from=2026-01-07T08:00:00Z&to=2026-01-07T08:30:00Z")
	if code != 200 || len(a.Intervals) != 1 || a.Truncated {
		t.Fatalf("door's activity: %d %+v", code, a)
	}
	if iv := a.Intervals[0]; iv.Camera != "door" || !iv.Start.Equal(t0.Add(2*time.Second)) || !iv.End.Equal(t0.Add(5*time.Second)) ||
		!iv.Peak.Equal(t0.Add(3*time.Second)) || iv.Level != 0.1 {
		t.Errorf("door's interval %+v", iv)
	}
	if code, a := get("/api/v1/cameras/door/activity"); code != 200 || len(a.Intervals) != 2 {
		t.Errorf("door's activity without a range: %d %+v", code, a)
	}
	code, a = get("/api/v1/activity?from=2026-01-07T08:00:00%2B01:00") // 07:00 UTC: all three
	if code != 200 || len(a.Intervals) != 3 || a.Intervals[0].Camera != "gate" || a.Intervals[1].Camera != "door" {
		t.Errorf("every camera's activity, by start: %d %+v", code, a)
	}
	for path, want := range map[string]int{
		"/api/v1/cameras/nosuch/activity":                                    404,
		"/api/v1/cameras/door/activity?from=yesterday":                       400,
		"/api/v1/activity?from=2026-01-08T00:00:00Z&to=2026-01-07T00:00:00Z": 400,
	} {
		rec := e.do(request{method: "GET", path: path})
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
		if m := errorBody(t, rec); m["error"] == "" || (want == 400 && strings.Contains(m["error"], "yesterday")) {
			t.Errorf("%s: error %q (it must say what is wrong without repeating the input)", path, m["error"])
		}
	}
}

func TestExportCutToActivityParameters(t *testing.T) {
	var e *env
	e = newEnv(t, Config{Listen: "127.0.0.1:0"}, func(d *Deps) {
		d.Activity = func(ctx context.Context, camera string, from, to time.Time, limit int) ([]catalog.ActivityInterval, error) {
			return e.cat.ActivityUpTo(ctx, camera, from, to, limit)
		}
		d.Export = export.NewService(export.ServiceConfig{}, export.ServiceDeps{}) // never reached: every request here fails before
	})
	q := "from=2026-01-07T08:00:00Z&to=2026-01-07T09:00:00Z"
	for _, tt := range []struct {
		query, want string
		code        int
	}{
		{"&activity=2", "activity must be 1", 400},
		{"&activity=1&pad=soon", "pad must be a duration", 400},
		{"&activity=1&pad=-1s", "pad must be a duration", 400},
		{"&activity=1&pad=1h", "pad must be a duration", 400},
		{"&pad=10s", "pad needs activity=1", 400},
		{"&activity=1", "no activity between from and to", 404},
	} {
		for _, route := range []string{"export", "export/manifest"} {
			rec := e.do(request{method: "GET", path: "/api/v1/cameras/door/" + route + "?" + q + tt.query})
			if m := errorBody(t, rec); rec.Code != tt.code || !strings.Contains(m["error"], tt.want) || strings.Contains(m["error"], "soon") {
				t.Errorf("%s%s: %d %q, want %d %q", route, tt.query, rec.Code, m["error"], tt.code, tt.want)
			}
		}
	}
}
