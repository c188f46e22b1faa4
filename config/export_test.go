package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMaxExportRange(t *testing.T) {
	cfg, err := Parse(mustRead(t, filepath.Join("testdata", "design-note.json")), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API.MaxExportRange.Std() != 24*time.Hour {
		t.Errorf("default maxExportRange = %v, want 24h", cfg.API.MaxExportRange.Std())
	}
	for v, want := range map[string]string{
		`"30s"`:  `api.maxExportRange: must be 1m0s to 744h0m0s (got 30s)`,
		`"745h"`: `api.maxExportRange: must be 1m0s to 744h0m0s (got 745h0m0s)`,
		`"48h"`:  ``,
		`3600`:   ``,
	} {
		data := []byte(`{"cameras": [{"cameraName": "c", "ipAddress": "10.0.0.1", "frameRate": 1, "resolution": "640x360", "videoDuration": 10, "videoFeedId": "f"}],
			"s3Config": {"s3Bucket": "bucket"}, "awsCredentials": {"accessKeyId": "k", "secretAccessKey": "s", "region": "r"},
			"storageConfig": {"savePath": "/rec", "clearWhenFilePathReachGB": 1}, "api": {"maxExportRange": ` + v + `}}`)
		_, err := Parse(data, noEnv)
		if got := errString(err); got != want {
			t.Errorf("maxExportRange %s: %q, want %q", v, got, want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestLoadS3(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o600)
		return p
	}
	// The box's whole config loads; so does one with the S3 blocks alone.
	for _, p := range []string{filepath.Join("testdata", "design-note.json"), "../config.example.json",
		write("s3.json", `{"s3Config": {"s3Bucket": "my-cctv-bucket", "s3Path": "/recordings/2025/", "endpoint": "http://127.0.0.1:9000"},
			"awsCredentials": {"accessKeyId": "k", "secretAccessKey": "s"}}`)} {
		cfg, err := LoadS3(p, noEnv, nil)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if cfg.S3Config.S3Bucket != "my-cctv-bucket" || cfg.S3Config.S3Path != "recordings/2025" || cfg.AWSCredentials.Region == "" {
			t.Errorf("%s: %+v %+v", p, cfg.S3Config, cfg.AWSCredentials)
		}
	}
	tests := []struct {
		name, data string
		override   func(*Config)
		want       string
	}{
		{"flags alone", "", func(c *Config) { c.S3Config.S3Bucket = "from-flags" }, ""},
		{"no bucket", "", nil, "s3Config.s3Bucket: is required"},
		{"flags replace the file", `{"s3Config": {"s3Bucket": "Bad_Bucket"}}`, func(c *Config) { c.S3Config.S3Bucket = "good-bucket" }, ""},
		{"strict as Load", `{"s3Config": {"s3Bucket": "b-b-b", "s3Pth": "x"}}`, nil, `config FILE: s3Config.s3Pth: unknown field (did you mean "s3Path"?)`},
		{"S3 rules still apply", `{"s3Config": {"s3Bucket": "b-b-b", "endpoint": "ftp://x"}, "awsCredentials": {"accessKeyId": "k"}}`, nil,
			"config FILE: s3Config.endpoint: \"ftp://x\" is not an http:// or https:// URL\nawsCredentials.secretAccessKey: is required when accessKeyId is set"},
	}
	for _, tt := range tests {
		path := ""
		if tt.data != "" {
			path = write("c.json", tt.data)
		}
		_, err := LoadS3(path, noEnv, tt.override)
		got := errString(err)
		if path != "" {
			got = strings.ReplaceAll(got, path, "FILE")
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
