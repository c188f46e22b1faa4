package media

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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

func TestDecodeBudget(t *testing.T) {
	for _, tt := range []struct {
		d     time.Duration
		bytes int64
		want  time.Duration
	}{
		{10 * time.Second, 1 << 20, 2*time.Minute + 21*time.Second},
		{600 * time.Second, 300 << 20, 2*time.Minute + 1200*time.Second + 300*time.Second},
		{-time.Hour, 0, 2 * time.Minute},         // a time read backwards
		{24 * time.Hour, 1 << 40, 2 * time.Hour}, // bounded
	} {
		if got := DecodeBudget(tt.d, tt.bytes); got != tt.want {
			t.Errorf("DecodeBudget(%v, %d) = %v, want %v", tt.d, tt.bytes, got, tt.want)
		}
	}
}

// TestFramesTellsTheFileFromTheChecker runs stand-in ffprobes (sh scripts):
// only a run that exits with an error, or counts no frame, is the file's
// fault; a killed, late or missing checker is not.
func TestFramesTellsTheFileFromTheChecker(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name       string
		probe      string
		frames     int
		undecoding bool // wraps ErrUndecodable
		timeout    bool // wraps ErrTimeout
	}{
		{"decodes", script("ok", "echo 42"), 42, false, false},
		{"rejects the file", script("rejects", "echo 'Invalid data found when processing input' >&2; exit 1"), 0, true, false},
		{"no frame", script("none", "echo 0"), 0, true, false},
		{"killed by a signal", script("killed", "kill -9 $$"), 0, false, false},
		{"not done in time", script("hangs", "exec sleep 30"), 0, false, true},
		{"not there", filepath.Join(dir, "missing"), 0, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Frames(ctx, tt.probe, "/some/file.mp4", time.Second)
			if n != tt.frames || errors.Is(err, ErrUndecodable) != tt.undecoding || errors.Is(err, ErrTimeout) != tt.timeout ||
				(tt.frames == 0) != (err != nil) {
				t.Errorf("Frames = %d, %v", n, err)
			}
		})
	}
}
