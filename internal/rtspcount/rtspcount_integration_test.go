//go:build integration

package rtspcount

import (
	"context"
	"net/url"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/testenv"
)

// The proxy counts what the real test camera sees from real ffprobe: a
// wrong password is one refused login (the first DESCRIBE, without
// credentials, is a challenge, not a login); the right one is a login
// accepted, and the stream passes through.
func TestCountsRefusedLogins(t *testing.T) {
	testenv.RequireTools(t)
	const password = "p@ss:w/rd#1"
	cam := testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/cam": "320x240@5"},
		User: "admin", Password: password, Auth: "digest"})
	p, err := Start("127.0.0.1:" + strconv.Itoa(cam.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	probe := func(pw string) error {
		u := url.URL{Scheme: "rtsp", User: url.UserPassword("admin", pw), Host: "127.0.0.1:" + strconv.Itoa(p.Port()), Path: "/cam"}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name", u.String()).Run()
	}
	if err := probe("wrong"); err == nil {
		t.Fatal("ffprobe with a wrong password succeeded")
	}
	if got := p.Counts(); got.Logins != 1 || got.Refused != 1 || got.Requests < 2 {
		t.Errorf("after a wrong password: %+v, want 1 login refused after a challenge", got)
	}
	if err := probe(password); err != nil {
		t.Fatalf("ffprobe with the right password: %v", err)
	}
	if got := p.Counts(); got.Logins < 2 || got.Refused != 1 || got.Connections != 2 {
		t.Errorf("after the right password: %+v, want more logins, none more refused, 2 connections", got)
	}
}
