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

// TestFramesTellsTheFileFromTheChecker runs stand-in ffprobes (sh scripts
// that print ffprobe's exact words): only a run that reports invalid data
// or a decoding error, or counts no frame, is the file's fault; a killed,
// late or missing checker is not, nor one that an I/O error or a lack of
// memory stopped (with or without a frame), nor an exit it does not
// explain.
func TestFramesTellsTheFileFromTheChecker(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := filepath.Join(dir, "file.mp4") // a file that reads through
	if err := os.WriteFile(file, make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name       string
		probe      string
		path       string // default: file
		frames     int
		undecoding bool // wraps ErrUndecodable
		timeout    bool // wraps ErrTimeout
	}{
		{"decodes", script("ok", "echo 42"), "", 42, false, false},
		{"rejects the file", script("rejects", "echo 'file.mp4: Invalid data found when processing input' >&2; exit 1"), "", 0, true, false},
		{"no frame", script("none", "echo 0"), "", 0, true, false},
		{"killed by a signal", script("killed", "kill -9 $$"), "", 0, false, false},
		{"not done in time", script("hangs", "exec sleep 30"), "", 0, false, true},
		{"not there", filepath.Join(dir, "missing"), "", 0, false, false},
		{"an I/O error opening it", script("eio", "echo 'file.mp4: Input/output error' >&2; exit 1"), "", 0, false, false},
		{"no memory", script("enomem", "echo 'file.mp4: Cannot allocate memory' >&2; exit 1"), "", 0, false, false},
		{"no memory while decoding", script("enomem-late", "echo '[h264 @ 0x55] Cannot allocate memory' >&2; echo '[h264 @ 0x55] error while decoding MB 16 0' >&2; exit 1"), "", 0, false, false},
		{"killed, as its wrapper says", script("wrapped", "echo 'Killed' >&2; exit 137"), "", 0, false, false},
		{"an exit it does not explain", script("unexplained", "exit 1"), "", 0, false, false},
		{"frameless on an I/O error", script("eio-na", "echo '[mov,mp4 @ 0x5] Error reading header: Input/output error' >&2; echo N/A"), "", 0, false, false},
		// ffprobe reports a read that failed mid-file as a partial file:
		// the file does not read through here either.
		{"a partial file that does not read", script("partial", "echo '[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5] stream 0, offset 0x6565: partial file' >&2; echo N/A"), dir, 0, false, false},
		{"a partial file that reads", script("partial2", "echo '[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5] stream 0, offset 0x6565: partial file' >&2; echo N/A"), "", 0, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := cmpOr(tt.path, file)
			timeout := 10 * time.Second
			if tt.timeout {
				timeout = time.Second
			}
			n, err := Frames(ctx, tt.probe, path, timeout)
			if n != tt.frames || errors.Is(err, ErrUndecodable) != tt.undecoding || errors.Is(err, ErrTimeout) != tt.timeout ||
				(tt.frames == 0) != (err != nil) {
				t.Errorf("Frames = %d, %v; want %d frames, undecodable %t", n, err, tt.frames, tt.undecoding)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestJudge: ffprobe's exits as it writes them (captured from ffprobe 5.1
// on damaged files, and on reads made to fail with EIO and ENOMEM by
// strace's fault injection): only invalid data and decoding errors are
// damage.
func TestJudge(t *testing.T) {
	for _, tt := range []struct {
		name   string
		code   int
		stderr string
		damage bool
	}{
		{"random bytes", 1, "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55cd976177c0] moov atom not found\nrandom.mp4: Invalid data found when processing input", true},
		{"zeros (a power cut's)", 1, "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55afe65877c0] moov atom not found\nzeros.mp4: Invalid data found when processing input", true},
		{"truncated inside a fragment", 1, "[h264 @ 0x561957cecc80] Invalid NAL unit size (3136 > 1380).\n[h264 @ 0x561957cecc80] Error splitting the input into NAL units.\n" +
			"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x561957ceb7c0] stream 0, offset 0x1294: partial file", true},
		{"garbled samples", 1, "[h264 @ 0x55c6af1fcc40] top block unavailable for requested intra mode -1\n[h264 @ 0x55c6af1fcc40] error while decoding MB 16 0, bytestream 2709", true},
		{"EIO opening it", 1, "frag.mp4: Input/output error", false},
		{"ENOMEM opening it", 1, "frag.mp4: Cannot allocate memory", false},
		{"a directory", 1, "adir.mp4: Is a directory", false},
		{"gone", 1, "nonexist.mp4: No such file or directory", false},
		{"unreadable", 1, "noperm.mp4: Permission denied", false},
		{"no memory amid decoding errors", 1, "[h264 @ 0x55] error while decoding MB 16 0\n[h264 @ 0x55] Cannot allocate memory", false},
		{"a wrapper's SIGKILL", 137, "Killed", false},
		{"an abort", 134, "[h264 @ 0x55] Invalid NAL unit size (3136 > 1380).", false},
		{"an option it does not take", 1, "Failed to set value 'x' for option 'threads': Invalid argument", false},
		{"nothing said", 1, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if damage, line := judge(tt.code, tt.stderr); damage != tt.damage || line == "" && tt.stderr != "" {
				t.Errorf("judge = %t (%q), want %t", damage, line, tt.damage)
			}
		})
	}
}
