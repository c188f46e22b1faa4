//go:build integration

package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/discovery"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
)

// Real discovery (package discovery against the real test camera, at a
// fast pace for the test): a camera without ONVIF whose path no list knows
// ends in a clear not-found error and waits; the other camera records.
func TestUnknownPathIsAClearErrorOthersRecord(t *testing.T) {
	testenv.RequireTools(t)
	cam := testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/vendor/secret/path": "320x180@5"},
		User: "admin", Password: testPassword, Auth: "digest"})
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("record"), 0o644)
	fake := standIn(t, dir)

	lost := discoveryCamera
	lost.CameraName, lost.RTSPPort, lost.ONVIFPort = "lost", cam.Port, closedTCPPort(t)
	other := discoveryCamera
	other.CameraName, other.RTSPPath = "other", "/cam"
	logs := &testenv.Buffer{}
	sup := New(Config{SavePath: dir, Owner: "test", FFmpegPath: fake, StallTimeout: time.Hour, StopTimeout: 2 * time.Second},
		[]config.Camera{lost, other}, nil, Deps{
			Log:      zerolog.New(redact.NewWriter(redact.New(testPassword), logs)),
			Redactor: redact.New(testPassword),
			Finder:   DiscoveryFinder(discovery.New(discovery.Config{PathInterval: time.Millisecond, PathBurst: 100})),
		})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() { cancel(); await.Recv(t, done, 30*time.Second, "supervisor stop") }()

	if err := sup.WaitFor(ctxT(t), "other", func(s Status) bool { return s.State == Recording }); err != nil {
		t.Fatalf("the other camera does not record: %+v", mustStatus(sup, "other"))
	}
	if err := sup.WaitFor(ctxT(t), "lost", func(s Status) bool { return s.LastExit != nil && s.State == Backoff }); err != nil {
		t.Fatalf("lost: %+v", mustStatus(sup, "lost"))
	}
	st := mustStatus(sup, "lost")
	want := "discovery: none of the 20 known paths answered with video on port " + fmt.Sprint(cam.Port) + ": no stream found"
	if st.LastExit.Reason != ReasonNotFound || !strings.HasPrefix(st.DiscoveryError, want) {
		t.Errorf("lost: reason %s, discovery error %q; want not-found, %q", st.LastExit.Reason, st.DiscoveryError, want)
	}
	if !strings.Contains(st.DiscoveryError, "no ONVIF device service") {
		t.Errorf("the error does not say ONVIF failed too: %q", st.DiscoveryError)
	}
	// The camera's log tells the search step by step.
	for _, want := range []string{`"message":"ONVIF found no stream; trying vendors' known paths"`,
		`"path":"/Streaming/Channels/101","vendor":"Hikvision (main stream)","status":404`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if mustStatus(sup, "other").State != Recording {
		t.Error("the other camera stopped recording")
	}
	assertNoSecret(t, logs.String()+st.DiscoveryError)
}
