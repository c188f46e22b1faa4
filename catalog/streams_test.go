package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cctvd/cctvd/layout"
)

func TestStreamsPersist(t *testing.T) {
	ctx := context.Background()
	save := t.TempDir()
	path := filepath.Join(save, ".cctvd", layout.CatalogName)
	c, err := Open(ctx, path, save, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stream(ctx, "cam1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no stream yet: err %v", err)
	}
	at := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	first := Stream{Camera: "cam1", Key: "k1", URI: "rtsp://10.0.0.5:554/Streaming/Channels/101", Source: "known path /Streaming/Channels/101", FoundAt: at}
	second := Stream{Camera: "cam1", Key: "k2", URI: "rtsp://10.0.0.5:554/onvif1", Source: `onvif profile "main"`, FoundAt: at.Add(time.Hour)}
	if err := c.PutStream(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := c.PutStream(ctx, second); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = Open(ctx, path, save, nil) // survives a restart
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Stream(ctx, "cam1")
	if err != nil || got != second {
		t.Errorf("stream %+v, %v; want %+v", got, err, second)
	}
}
