package main

import (
	"testing"
	"time"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/layout"
)

// TestComponentsFromTheDesignNote: the design note's config reaches every
// component with the product's defaults, applied once by package config.
func TestComponentsFromTheDesignNote(t *testing.T) {
	cfg, err := config.Load("../../config/testdata/design-note.json", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	sup := supervisorConfig(cfg, "owner")
	if sup.FFmpegPath != "ffmpeg" || sup.ProbePath != "ffprobe" || sup.Preset != "ultrafast" || sup.StallTimeout != 15*time.Second ||
		sup.StopTimeout != 10*time.Second || sup.SavePath != "/var/cctv/recordings" || sup.Owner != "owner" {
		t.Errorf("supervisor: %+v", sup)
	}
	if seg := segmenterConfig(cfg, "owner"); seg.SyncInterval != 2*time.Second || seg.ProbePath != "ffprobe" || seg.FeedIDs["camera2"] != "xx" {
		t.Errorf("segmenter: %+v", seg)
	}
	up := uploaderConfig(cfg)
	if up.Bucket != "my-cctv-bucket" || up.Prefix != "recordings/2025" || up.Concurrency != 2 || up.PartSize != 16<<20 ||
		up.PartConcurrency != 4 || up.ClearAfterUpload || up.ProbePath != "ffprobe" {
		t.Errorf("uploader: %+v", up)
	}
	if cc := clientConfig(cfg); cc.Region != "us-east-1" || cc.AccessKeyID != "YOUR_ACCESS_KEY" || cc.Endpoint != "" || cc.PathStyle {
		t.Errorf("S3 client: %+v", cc)
	}
	if ret := retentionConfig(cfg); ret.LimitBytes != 100e9 || ret.LowWater != 0.95 || ret.MinFreeBytes != 0 {
		t.Errorf("retention: %+v", ret)
	}
	if k := keeperConfig(cfg); k.Path != layout.Catalog("/var/cctv/recordings/.cctvd") || k.RetentionDays != 30 {
		t.Errorf("keeper: %+v", k)
	}
	if a := apiConfig(cfg); a.Listen != "127.0.0.1:8080" || a.Token != "" || a.MaxExportRange != 24*time.Hour || a.StopTimeout != 20*time.Second {
		t.Errorf("api: %+v", a)
	}
	if s := snapshotConfig(cfg); s.FFmpegPath != "ffmpeg" {
		t.Errorf("snapshot: %+v", s)
	}

	cfg.StorageConfig.SyncInterval = 0 // "0" in the file: left to the kernel
	if seg := segmenterConfig(cfg, "owner"); seg.SyncInterval >= 0 {
		t.Errorf("syncInterval 0 gives the segmenter %v, want a negative interval (off)", seg.SyncInterval)
	}
	cfg.AWSCredentials, cfg.S3Config.Endpoint = nil, "http://127.0.0.1:9000"
	if cc := clientConfig(cfg); cc.Region != config.DefaultRegion || cc.AccessKeyID != "" {
		t.Errorf("S3 client with an endpoint and no credentials: %+v", cc)
	}
}
