package config

import (
	"path/filepath"
	"testing"
)

func TestLiveLimits(t *testing.T) {
	cfg, err := Parse(mustRead(t, filepath.Join("testdata", "design-note.json")), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API.LiveMaxViewers != 32 || cfg.API.LiveMaxViewersPerCamera != 16 {
		t.Errorf("default live limits = %d, %d, want 32, 16", cfg.API.LiveMaxViewers, cfg.API.LiveMaxViewersPerCamera)
	}
	for v, want := range map[string]string{
		`"liveMaxViewers": 0`:                               `api.liveMaxViewers: must be 1 to 100 (got 0)`,
		`"liveMaxViewers": 101`:                             `api.liveMaxViewers: must be 1 to 100 (got 101)`,
		`"liveMaxViewers": 100`:                             ``,
		`"liveMaxViewers": 8`:                               `api.liveMaxViewersPerCamera: must be 1 to api.liveMaxViewers, 8 (got 16)`,
		`"liveMaxViewers": 8, "liveMaxViewersPerCamera": 8`: ``,
		`"liveMaxViewersPerCamera": 1`:                      ``,
		`"liveMaxViewersPerCamera": -1`:                     `api.liveMaxViewersPerCamera: must be 1 to api.liveMaxViewers, 32 (got -1)`,
	} {
		data := []byte(`{"cameras": [{"cameraName": "c", "ipAddress": "10.0.0.1", "frameRate": 1, "resolution": "640x360", "videoDuration": 10, "videoFeedId": "f"}],
			"s3Config": {"s3Bucket": "bucket"}, "awsCredentials": {"accessKeyId": "k", "secretAccessKey": "s", "region": "r"},
			"storageConfig": {"savePath": "/rec", "clearWhenFilePathReachGB": 1}, "api": {` + v + `}}`)
		_, err := Parse(data, noEnv)
		if got := errString(err); got != want {
			t.Errorf("%s: %q, want %q", v, got, want)
		}
	}
}
