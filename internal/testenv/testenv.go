// Package testenv gives tests the real parts of package fixture — a
// simulated IP camera (GStreamer's RTSP server) and MinIO on 127.0.0.1,
// ffprobe — failing the test on error and stopping them when it ends.
//
// Tests that use them are integration tests: their files carry the build
// tag `integration` (`make test` runs them, `make unit` does not). `make
// test` installs what they need; a test that cannot find a tool fails and
// says to run `make deps`, it is never skipped. A test that needs root, a
// mount, a loop device or a network namespace fails too when the machine
// lacks it (NeedsRoot), unless CCTVD_SKIP_ROOT=1 asks to skip those, and
// then it says so.
package testenv

import (
	"os"
	"strings"
	"testing"

	"github.com/cctvd/cctvd/internal/fixture"
)

// Aliases, so tests need import only this package.
type (
	CameraOptions = fixture.CameraOptions
	// Pair is a main stream and its sub stream of one source.
	Pair          = fixture.Pair
	Probe         = fixture.Probe
	Object        = fixture.Object
	MinIOOptions  = fixture.MinIOOptions
	BucketOptions = fixture.BucketOptions
	// Buffer is safe for concurrent use: a test's log output.
	Buffer = fixture.Buffer
)

// RequireTools fails the test unless ffmpeg, ffprobe and the GStreamer
// RTSP server are installed.
func RequireTools(t testing.TB) {
	t.Helper()
	if err := fixture.CheckTools(); err != nil {
		t.Fatal(err)
	}
}

// RepoRoot returns the repository's root folder.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := fixture.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Camera is a simulated IP camera for a test.
type Camera struct {
	*fixture.Camera
	t testing.TB
}

// StartCamera starts a camera and stops it when the test ends.
func StartCamera(t testing.TB, opts CameraOptions) *Camera {
	t.Helper()
	c, err := fixture.StartCamera(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return &Camera{Camera: c, t: t}
}

// Restart stops the camera server and starts a new one on the same port,
// as when a camera reboots.
func (c *Camera) Restart() {
	c.t.Helper()
	c.Stop()
	if err := c.Camera.Start(); err != nil {
		c.t.Fatal(err)
	}
}

// ProbeFile runs ffprobe on path, decoding every frame; a file that does
// not play fails the test.
func ProbeFile(t testing.TB, path string) Probe {
	t.Helper()
	p, err := fixture.ProbeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ClearAWSEnv unsets every AWS_* variable for the test, so the machine's
// environment (a profile, a CA bundle, credentials) cannot change results.
func ClearAWSEnv(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
}

// MinIO is a real S3 server for a test.
type MinIO struct {
	*fixture.MinIO
	t testing.TB
}

// StartMinIO starts a MinIO server and stops it when the test ends.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	return StartMinIOWith(t, MinIOOptions{})
}

// StartMinIOWith starts a MinIO server of the variant opts says and stops
// it when the test ends.
func StartMinIOWith(t testing.TB, opts MinIOOptions) *MinIO {
	t.Helper()
	ClearAWSEnv(t)
	m, err := fixture.StartMinIOWith(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return &MinIO{MinIO: m, t: t}
}

// Start restarts a stopped server.
func (m *MinIO) Start() {
	m.t.Helper()
	if err := m.MinIO.Start(); err != nil {
		m.t.Fatal(err)
	}
}

// CreateBucket creates a bucket.
func (m *MinIO) CreateBucket(name string) {
	m.t.Helper()
	if err := m.MinIO.CreateBucket(name); err != nil {
		m.t.Fatal(err)
	}
}

// CreateBucketWith creates a bucket of the variant opts says.
func (m *MinIO) CreateBucketWith(name string, opts BucketOptions) {
	m.t.Helper()
	if err := m.MinIO.CreateBucketWith(name, opts); err != nil {
		m.t.Fatal(err)
	}
}

// List lists a bucket's objects under prefix.
func (m *MinIO) List(bucket, prefix string) []Object {
	m.t.Helper()
	out, err := m.MinIO.List(bucket, prefix)
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}

// MultipartUploads counts the unfinished multipart uploads of key.
func (m *MinIO) MultipartUploads(bucket, key string) int {
	m.t.Helper()
	n, err := m.MinIO.MultipartUploads(bucket, key)
	if err != nil {
		m.t.Fatal(err)
	}
	return n
}

// Mosquitto is a real MQTT broker for a test.
type Mosquitto struct {
	*fixture.Mosquitto
	t testing.TB
}

// StartMosquitto starts Debian's mosquitto on a free loopback port with a
// user and password, and stops it when the test ends. Without mosquitto
// installed the test fails.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	m, err := fixture.StartMosquitto(t.TempDir(), "cctvd", "br0ker-passw0rd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return &Mosquitto{Mosquitto: m, t: t}
}

// Start restarts a stopped broker on the same port.
func (m *Mosquitto) Start() {
	m.t.Helper()
	if err := m.Mosquitto.Start(); err != nil {
		m.t.Fatal(err)
	}
}

// Script sends the camera's scene a command (CameraOptions.Scene): "motion
// on", "motion off", "lights 0.3".
func (c *Camera) Script(command string) {
	c.t.Helper()
	if err := c.Camera.Script(command); err != nil {
		c.t.Fatal(err)
	}
}
