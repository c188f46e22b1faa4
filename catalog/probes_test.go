package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cctvd/cctvd/layout"
)

// TestProbesPersist: a camera's probe is kept across a reopen, the last
// put replacing the one before, each camera its own.
func TestProbesPersist(t *testing.T) {
	ctx := context.Background()
	save := t.TempDir()
	path := filepath.Join(save, ".cctvd", layout.CatalogName)
	c, err := Open(ctx, path, save, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Probe(ctx, "cam1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no probe yet: err %v", err)
	}
	at := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	first := Probe{Camera: "cam1", Key: "k1", Decision: "transcode", Stream: "h264 1920x1080 25 fps", ProbedAt: at}
	second := Probe{Camera: "cam1", Key: "k2", Decision: "copy", Codec: "h264", Stream: "h264 1280x720 25 fps", Loose: true, ProbedAt: at.Add(time.Hour)}
	other := Probe{Camera: "cam2.sub", Key: "k3", ProbedAt: at}
	for _, p := range []Probe{first, second, other} {
		if err := c.PutProbe(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	c, err = Open(ctx, path, save, nil) // survives a restart
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, want := range []Probe{second, other} {
		if got, err := c.Probe(ctx, want.Camera); err != nil || got != want {
			t.Errorf("probe %+v, %v; want %+v", got, err, want)
		}
	}
}
