package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cctvd/cctvd/supervisor"
)

// POST /cameras/{name}/retry: a camera waiting (here in backoff after a
// failed start, an hour long) tries at once and the answer is the camera
// after it tried; a stopped camera is a 409, an unknown one a 404, a form
// post a 403, each a JSON error.
func TestRetryCamera(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:8080"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.sup.WaitFor(ctx, "door", func(s supervisor.Status) bool { return s.State == supervisor.Backoff }); err != nil {
		t.Fatal(err)
	}
	before, _ := e.sup.Status("door")
	jsonCT := map[string]string{"Content-Type": "application/json"}
	rec := e.do(request{method: "POST", path: "/api/v1/cameras/door/retry", header: jsonCT})
	if rec.Code != 200 {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body.String())
	}
	var cam Camera
	if err := json.Unmarshal(rec.Body.Bytes(), &cam); err != nil {
		t.Fatal(err)
	}
	if cam.Name != "door" || cam.Restarts != before.Restarts+1 {
		t.Errorf("after a retry: %s, restarts %d (before %d), want one more", cam.Name, cam.Restarts, before.Restarts)
	}
	for _, tt := range []struct {
		name   string
		req    request
		status int
	}{
		{"unknown camera", request{method: "POST", path: "/api/v1/cameras/nope/retry", header: jsonCT}, 404},
		{"a form post", request{method: "POST", path: "/api/v1/cameras/door/retry", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 403},
	} {
		if rec := e.do(tt.req); rec.Code != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body.String(), tt.status)
		} else {
			errorBody(t, rec)
		}
	}
	if err := e.sup.Stop(ctx, "door"); err != nil {
		t.Fatal(err)
	}
	rec = e.do(request{method: "POST", path: "/api/v1/cameras/door/retry", header: jsonCT})
	if rec.Code != 409 || errorBody(t, rec)["error"] != "the camera is stopped: start it" {
		t.Errorf("retry of a stopped camera: %d %s", rec.Code, rec.Body.String())
	}
	if st, _ := e.sup.Status("door"); st.Desired || st.State != supervisor.Stopped {
		t.Errorf("a retry moved a stopped camera: %+v", st)
	}
}
