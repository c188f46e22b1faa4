package media

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestJob runs jobs through sh: how each way of ending is told apart, and
// what a job gets and keeps.
func TestJob(t *testing.T) {
	ctx := context.Background()
	t.Setenv("CCTVD_API_TOKEN", "t0ken-s3cret-abc")
	res, err := job{bin: "sh", args: []string{"-c", "echo out; echo err >&2; env"}, timeout: 10 * time.Second}.run(ctx)
	if err != nil || !strings.HasPrefix(string(res.stdout), "out\n") || res.stderr != "err" {
		t.Fatalf("run = %q, %q, %v", res.stdout, res.stderr, err)
	}
	if strings.Contains(string(res.stdout), "t0ken") || !strings.Contains(string(res.stdout), "TZ=UTC") {
		t.Errorf("the job's environment is not the minimal one:\n%s", res.stdout)
	}

	if _, err := (job{bin: "sh", args: []string{"-c", "exit 3"}, timeout: 10 * time.Second}).run(ctx); !Failed(err) {
		t.Errorf("exit 3: %v, want a failure of the input", err)
	}
	if _, err := (job{bin: "/nonexistent/ffprobe", timeout: 10 * time.Second}).run(ctx); err == nil || Failed(err) {
		t.Errorf("a missing program: %v, want an error that is not the input's", err)
	}
	start := time.Now()
	_, err = job{bin: "sh", args: []string{"-c", "sleep 30 & sleep 30"}, timeout: 200 * time.Millisecond}.run(ctx)
	if !errors.Is(err, ErrTimeout) || Failed(err) {
		t.Errorf("past its deadline: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the job and its child were killed after %v", d)
	}
	if _, err := (job{bin: "sh", args: []string{"-c", "head -c 5000 /dev/zero"}, timeout: 10 * time.Second, maxOut: 4096}).run(ctx); err == nil {
		t.Error("more output than maxOut is no error")
	}
	res, _ = job{bin: "sh", args: []string{"-c", "head -c 100000 /dev/zero >&2; exit 1"}, timeout: 10 * time.Second}.run(ctx)
	if len(res.stderr) > maxErr {
		t.Errorf("kept %d bytes of stderr", len(res.stderr))
	}
}

func TestRate(t *testing.T) {
	for in, want := range map[string]float64{"25/1": 25, "30000/1001": 30000.0 / 1001, "12.5": 12.5, "0/0": 0, "x": 0} {
		if got := Rate(in); got != want {
			t.Errorf("Rate(%q) = %v, want %v", in, got, want)
		}
	}
}
