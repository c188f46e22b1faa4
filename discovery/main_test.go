//go:build integration

package discovery

import (
	"os"
	"testing"

	"github.com/cctvd/cctvd/internal/fixture"
	"github.com/cctvd/cctvd/internal/testenv"
)

func startCam(mounts map[string]string, auth string) (*testenv.Camera, error) {
	c, err := fixture.StartCamera(fixture.CameraOptions{Mounts: mounts, User: camUser, Password: camPassword, Auth: auth})
	if err != nil {
		return nil, err
	}
	started = append(started, c)
	return &testenv.Camera{Camera: c}, nil
}

var started []*fixture.Camera

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range started {
		c.Stop()
	}
	os.Exit(code)
}
