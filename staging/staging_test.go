package staging

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestEnded: a run of this daemon has ended when its metadata says so; a
// run left by another has ended once its ffmpeg is gone, and Kill ends it.
func TestEnded(t *testing.T) {
	const id = "20260106T120000-000000000"
	// A stand-in for a leftover ffmpeg: a process whose command line names the run.
	p := exec.Command("sh", "-c", "sleep 600", id)
	p.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { p.Wait(); close(exited) }()
	t.Cleanup(func() { p.Process.Kill() })

	tests := []struct {
		name string
		meta Meta
		want bool
	}{
		{"ours, running", Meta{RunID: id, Owner: "me", PID: p.Process.Pid}, false},
		{"ours, exited", Meta{RunID: id, Owner: "me", PID: p.Process.Pid, Exited: true}, true},
		{"another daemon's, its ffmpeg running", Meta{RunID: id, Owner: "dead", PID: p.Process.Pid}, false},
		{"another daemon's, the pid now another process", Meta{RunID: "20260106T130000-000000000", Owner: "dead", PID: p.Process.Pid}, true},
		{"another daemon's, ffmpeg never started", Meta{RunID: id, Owner: "dead"}, true},
	}
	for _, tt := range tests {
		if got := tt.meta.Ended("me"); got != tt.want {
			t.Errorf("%s: Ended = %v, want %v", tt.name, got, tt.want)
		}
	}
	left := Meta{RunID: id, Owner: "dead", PID: p.Process.Pid}
	if err := left.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("Kill did not end the leftover process")
	}
	if !left.Ended("me") {
		t.Error("a killed leftover run has not ended")
	}
}
