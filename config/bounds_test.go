package config

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// edit changes one thing in the design note's config.
type edit func(m map[string]any)

func storage(k string, v any) edit {
	return func(m map[string]any) { m["storageConfig"].(map[string]any)[k] = v }
}

func s3(k string, v any) edit {
	return func(m map[string]any) { m["s3Config"].(map[string]any)[k] = v }
}

func camera(i int, k string, v any) edit {
	return func(m map[string]any) { m["cameras"].([]any)[i].(map[string]any)[k] = v }
}

func block(name string, kv ...any) edit {
	return func(m map[string]any) {
		b := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			b[kv[i].(string)] = kv[i+1]
		}
		m[name] = b
	}
}

// parseEdited parses the design note's config with edits, and returns the
// messages of its problems (nil when it is valid).
func parseEdited(t *testing.T, edits ...edit) (*Config, []string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(mustRead(t, filepath.Join("testdata", "design-note.json")), &m); err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		e(m)
	}
	data, _ := json.Marshal(m)
	cfg, err := Parse(data, noEnv)
	if err == nil {
		return cfg, nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil, []string{err.Error()}
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.Error())
	}
	return nil, got
}

// TestStorageAndLimitsErrors: every storage field, and each limit of
// Validate just past its edge, with its exact message.
func TestStorageAndLimitsErrors(t *testing.T) {
	long := strings.Repeat("a", MaxCameraNameLen+1)
	tests := []struct {
		name string
		edit edit
		want string
	}{
		{"low water below half", storage("lowWaterPercent", 49.9), `storageConfig.lowWaterPercent: must be at least 50 and below 100 (got 49.9)`},
		{"low water at the limit", storage("lowWaterPercent", 100), `storageConfig.lowWaterPercent: must be at least 50 and below 100 (got 100)`},
		{"negative low water", storage("lowWaterPercent", -5), `storageConfig.lowWaterPercent: must be at least 50 and below 100 (got -5)`},
		{"quarantine over half the limit", storage("quarantinePercent", 50.5), `storageConfig.quarantinePercent: must be 0 (no bound: quarantined files are never deleted) or a percentage of the limit up to 50 (got 50.5)`},
		{"negative quarantine", storage("quarantinePercent", -1), `storageConfig.quarantinePercent: must be 0 (no bound: quarantined files are never deleted) or a percentage of the limit up to 50 (got -1)`},
		{"negative free-space floor", storage("minFreeGB", -0.5), `storageConfig.minFreeGB: must not be negative (got -0.5)`},
		{"relative state dir", storage("stateDir", "state"), `storageConfig.stateDir: "state" must be an absolute path`},
		{"state dir walking up", storage("stateDir", "../var/lib/cctvd"), `storageConfig.stateDir: "../var/lib/cctvd" must be an absolute path`},
		{"relative export temp dir", storage("exportTempDir", "tmp"), `storageConfig.exportTempDir: "tmp" must be an absolute path`},
		{"negative limit", storage("clearWhenFilePathReachGB", -0.1), `storageConfig.clearWhenFilePathReachGB: must be greater than 0 (got -0.1)`},
		{"sync interval just too short", storage("syncInterval", "99ms"), `storageConfig.syncInterval: must be 0 (off) or from 100ms to 1m (got 99ms)`},
		{"sync interval just too long", storage("syncInterval", "61s"), `storageConfig.syncInterval: must be 0 (off) or from 100ms to 1m (got 1m1s)`},
		{"catalog retention just past a century", storage("catalogRetentionDays", MaxCatalogRetentionDays+1),
			`storageConfig.catalogRetentionDays: must be 0 (keep every row) or a number of days up to 36500 (got 36501)`},
		{"frame rate past the maximum", camera(0, "frameRate", 120.5), `cameras[0].frameRate: must be at most 120 (got 120.5)`},
		{"duration past a day", camera(0, "videoDuration", 86401), `cameras[0].videoDuration: must be at most 86400 seconds (got 86401)`},
		{"resolution too wide", camera(0, "resolution", "8194x1080"), `cameras[0].resolution: "8194x1080" is out of range (16 to 8192 per side)`},
		{"resolution too tall", camera(0, "resolution", "1920x8194"), `cameras[0].resolution: "1920x8194" is out of range (16 to 8192 per side)`},
		{"resolution too narrow", camera(0, "resolution", "14x1080"), `cameras[0].resolution: "14x1080" is out of range (16 to 8192 per side)`},
		{"resolution too short", camera(0, "resolution", "1920x14"), `cameras[0].resolution: "1920x14" is out of range (16 to 8192 per side)`},
		{"resolution that overflows", camera(0, "resolution", "99999999999999999999x1080"),
			`cameras[0].resolution: "99999999999999999999x1080" is out of range (16 to 8192 per side)`},
		{"odd height", camera(0, "resolution", "1920x1081"), `cameras[0].resolution: "1920x1081" must have an even width and height`},
		{"negative port", camera(0, "rtspPort", -1), `cameras[0].rtspPort: -1 is not a port number (1 to 65535)`},
		{"port 65536", camera(0, "rtspPort", 65536), `cameras[0].rtspPort: 65536 is not a port number (1 to 65535)`},
		{"onvif port 65536", camera(0, "onvifPort", 65536), `cameras[0].onvifPort: 65536 is not a port number (1 to 65535)`},
		{"camera name too long", camera(0, "cameraName", long), `cameras[0].cameraName: "` + long + `" is longer than 64 characters`},
		{"feed id too long", camera(0, "videoFeedId", long), `cameras[0].videoFeedId: "` + long + `" is longer than 64 characters`},
		{"feed id missing", camera(0, "videoFeedId", ""), `cameras[0].videoFeedId: is required`},
		{"ip not a host", camera(0, "ipAddress", "cam era"), `cameras[0].ipAddress: "cam era" is not an IP address or host name`},
		{"rtsp path with a fragment", camera(0, "rtspPath", "/x#y"), `cameras[0].rtspPath: "/x#y" is not a URL path such as /Streaming/Channels/101`},
		{"rtsp path that is no URL", camera(0, "rtspPath", "/%zz"), `cameras[0].rtspPath: "/%zz" is not a URL path such as /Streaming/Channels/101`},
		{"stream url without a host", camera(0, "streamUrl", "rtsp:///x"), `cameras[0].streamUrl: has no host`},
		{"file url without a path", camera(0, "streamUrl", "file://"), `cameras[0].streamUrl: has no file path`},
		{"stream url that is no URL", camera(0, "streamUrl", "rtsp://cam/%zz"), `cameras[0].streamUrl: is not a URL`},
		{"relative hwaccel device", camera(0, "hwaccelDevice", "renderD128"), `cameras[0].hwaccelDevice: "renderD128" is not an absolute path such as /dev/dri/renderD128`},
		{"bad transport", camera(0, "rtspTransport", "http"), `cameras[0].rtspTransport: "http" is not tcp or udp`},
		{"bucket with two dots", s3("s3Bucket", "my..bucket"), `s3Config.s3Bucket: "my..bucket" is not a bucket name (3 to 63 lower-case letters, digits, '.' and '-')`},
		{"no bucket", s3("s3Bucket", ""), `s3Config.s3Bucket: is required`},
		{"key prefix with an empty segment", s3("s3Path", "a//b"), `s3Config.s3Path: "a//b" is not a key prefix such as recordings/2025`},
		{"key prefix with a backslash", s3("s3Path", `a\b`), `s3Config.s3Path: "a\\b" is not a key prefix such as recordings/2025`},
		{"too many uploads at once", s3("uploadConcurrency", 65), `s3Config.uploadConcurrency: must be 1 to 64 (got 65)`},
		{"parts too large", s3("partSizeMB", 5121), `s3Config.partSizeMB: must be 5 to 5120 (got 5121): S3 parts are at least 5 MiB`},
		{"no parts at once", s3("partConcurrency", -1), `s3Config.partConcurrency: must be 1 to 64 (got -1)`},
		{"too many parts at once", s3("partConcurrency", 65), `s3Config.partConcurrency: must be 1 to 64 (got 65)`},
		{"endpoint without a host", s3("endpoint", "http://"), `s3Config.endpoint: "http://" is not an http:// or https:// URL`},
		{"negative cap", s3("maxUploadMbps", -1), `s3Config.maxUploadMbps: must be 0 to 100000 Mbit/s (got -1)`},
		{"unknown time zone", s3("timeZone", "Mars/Olympus"), `s3Config.timeZone: "Mars/Olympus" is not a time zone such as Europe/Paris`},
		{"unknown order", s3("uploadOrder", "random"), `s3Config.uploadOrder: "random" is not oldest or newest`},
		{"window past the day's hours", func(m map[string]any) {
			s3("uploadSchedule", []any{map[string]any{"from": "08:00", "to": "18:00", "mbps": 2}, map[string]any{"from": "25:00", "to": "06:00", "mbps": 0}})(m)
		}, `s3Config.uploadSchedule[1].from: "25:00" is not HH:MM`},
		{"window without its minutes", func(m map[string]any) {
			s3("uploadSchedule", []any{map[string]any{"from": "08:00", "to": "8", "mbps": 2}})(m)
		}, `s3Config.uploadSchedule[0].to: "8" is not HH:MM`},
		{"window of no time", func(m map[string]any) {
			s3("uploadSchedule", []any{map[string]any{"from": "08:00", "to": "08:00", "mbps": 2}})(m)
		}, `s3Config.uploadSchedule[0].to: "08:00" is the window's start: a window lasts at least a minute`},
		{"window on no day", func(m map[string]any) {
			s3("uploadSchedule", []any{map[string]any{"days": []any{"mon", "monday"}, "from": "08:00", "to": "09:00", "mbps": 2}})(m)
		}, `s3Config.uploadSchedule[0].days[1]: "monday" is not one of sun, mon, tue, wed, thu, fri, sat`},
		{"window with a negative cap", func(m map[string]any) {
			s3("uploadSchedule", []any{map[string]any{"from": "08:00", "to": "09:00", "mbps": -2}})(m)
		}, `s3Config.uploadSchedule[0].mbps: must be 0 to 100000 Mbit/s (got -2)`},
		{"key id without a secret", func(m map[string]any) { m["awsCredentials"].(map[string]any)["secretAccessKey"] = "" },
			`awsCredentials.secretAccessKey: is required when accessKeyId is set`},
		{"listen without a port", block("api", "listen", "127.0.0.1"), `api.listen: "127.0.0.1" is not host:port, such as 127.0.0.1:8080`},
		{"listen on a port past the range", block("api", "listen", "127.0.0.1:65536"), `api.listen: "127.0.0.1:65536" has no valid port`},
		{"tls key without a cert", block("api", "tlsKey", "/etc/cctvd/api.key"), `api.tlsCert: is required with api.tlsKey`},
		{"export range too long", block("api", "maxExportRange", "745h"), `api.maxExportRange: must be 1m0s to 744h0m0s (got 745h0m0s)`},
		{"export range too short", block("api", "maxExportRange", "59s"), `api.maxExportRange: must be 1m0s to 744h0m0s (got 59s)`},
		{"no ffmpeg", block("ffmpeg", "path", ""), `ffmpeg.path: must not be empty`},
		{"no ffprobe", block("ffmpeg", "probePath", ""), `ffmpeg.probePath: must not be empty`},
		{"short stop timeout", block("ffmpeg", "stopTimeout", "500ms"), `ffmpeg.stopTimeout: must be at least 1s (got 500ms)`},
		{"bad preset", block("ffmpeg", "preset", "quick"), `ffmpeg.preset: "quick" is not one of ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow`},
		{"bad log format", block("log", "format", "xml"), `log.format: "xml" is not one of auto, json, console`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := parseEdited(t, tt.edit)
			if strings.Join(got, "\n") != tt.want {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestLimitsAccepted: the edges themselves are valid, and what they set
// is what the daemon gets.
func TestLimitsAccepted(t *testing.T) {
	long := strings.Repeat("a", MaxCameraNameLen)
	tests := []struct {
		name  string
		edit  edit
		check func(c *Config) bool
	}{
		{"low water at half", storage("lowWaterPercent", 50), func(c *Config) bool { return c.StorageConfig.LowWaterPercent == 50 }},
		{"low water just below the limit", storage("lowWaterPercent", 99.9), func(c *Config) bool { return c.StorageConfig.LowWaterPercent == 99.9 }},
		{"low water unset: the default", func(map[string]any) {}, func(c *Config) bool { return c.StorageConfig.LowWaterPercent == DefaultLowWaterPercent }},
		{"quarantine unset: the default", func(map[string]any) {}, func(c *Config) bool {
			return c.StorageConfig.QuarantinePercent == nil && c.StorageConfig.QuarantineShare() == DefaultQuarantinePercent/100.0
		}},
		{"quarantine at half", storage("quarantinePercent", 50), func(c *Config) bool { return c.StorageConfig.QuarantineShare() == 0.5 }},
		{"a small quarantine", storage("quarantinePercent", 0.5), func(c *Config) bool { return c.StorageConfig.QuarantineShare() == 0.005 }},
		{"a quarantine without a bound", storage("quarantinePercent", 0), func(c *Config) bool {
			return c.StorageConfig.QuarantinePercent != nil && c.StorageConfig.QuarantineShare() == 0
		}},
		{"no free-space floor set", storage("minFreeGB", 0), func(c *Config) bool { return c.StorageConfig.MinFreeGB == 0 }},
		{"a floor", storage("minFreeGB", 2.5), func(c *Config) bool { return c.StorageConfig.MinFreeGB == 2.5 }},
		{"state dir absolute, cleaned", storage("stateDir", "/var/lib/cctvd/"), func(c *Config) bool { return c.StorageConfig.StateDir == "/var/lib/cctvd" }},
		{"export temp dir absolute, cleaned", storage("exportTempDir", "/srv/tmp/"), func(c *Config) bool { return c.StorageConfig.ExportTempDir == "/srv/tmp" }},
		{"export temp dir unset: /tmp without TMPDIR", func(map[string]any) {}, func(c *Config) bool { return c.StorageConfig.ExportTempDir == DefaultTempDir }},
		{"sync interval at its shortest", storage("syncInterval", "100ms"), func(c *Config) bool { return c.StorageConfig.SyncInterval.Std().Milliseconds() == 100 }},
		{"sync interval at its longest", storage("syncInterval", "1m"), func(c *Config) bool { return c.StorageConfig.SyncInterval.Std().Seconds() == 60 }},
		{"sync interval off", storage("syncInterval", 0), func(c *Config) bool { return c.StorageConfig.SyncInterval == 0 }},
		{"catalog retention of a century", storage("catalogRetentionDays", MaxCatalogRetentionDays),
			func(c *Config) bool { return c.StorageConfig.CatalogDays() == MaxCatalogRetentionDays }},
		{"frame rate at the maximum", camera(0, "frameRate", 120), func(c *Config) bool { return c.Cameras[0].FrameRate == 120 }},
		{"duration of a day", camera(0, "videoDuration", 86400), func(c *Config) bool { return c.Cameras[0].VideoDuration == 86400 }},
		{"duration of a second", camera(0, "videoDuration", 1), func(c *Config) bool { return c.Cameras[0].VideoDuration == 1 }},
		{"smallest resolution", camera(0, "resolution", "16x16"), func(c *Config) bool { return c.Cameras[0].Resolution == "16x16" }},
		{"largest resolution", camera(0, "resolution", "8192x8192"), func(c *Config) bool { return c.Cameras[0].Resolution == "8192x8192" }},
		{"ports at the edges", func(m map[string]any) { camera(0, "rtspPort", 1)(m); camera(0, "onvifPort", 65535)(m) },
			func(c *Config) bool { return c.Cameras[0].RTSPPort == 1 && c.Cameras[0].ONVIFPort == 65535 }},
		{"longest names", func(m map[string]any) { camera(0, "cameraName", long)(m); camera(0, "videoFeedId", long)(m) },
			func(c *Config) bool { return c.Cameras[0].CameraName == long }},
		{"port 0: the default", camera(0, "rtspPort", 0), func(c *Config) bool { return c.Cameras[0].RTSPPort == DefaultRTSPPort }},
		{"a path without its slash", camera(0, "rtspPath", "live"), func(c *Config) bool { return c.Cameras[0].RTSPPath == "/live" }},
		{"export range at its edges", block("api", "maxExportRange", "744h"), func(c *Config) bool { return c.API.MaxExportRange.Std().Hours() == 744 }},
		{"udp", camera(0, "rtspTransport", "udp"), func(c *Config) bool { return c.Cameras[0].RTSPTransport == "udp" }},
		{"a file stream", camera(0, "streamUrl", "file:///srv/test.mp4"), func(c *Config) bool { return c.Cameras[0].StreamURL == "file:///srv/test.mp4" }},
		{"uploads and parts at the edges", func(m map[string]any) {
			s3("uploadConcurrency", 64)(m)
			s3("partSizeMB", 5120)(m)
			s3("partConcurrency", 1)(m)
		}, func(c *Config) bool { return c.S3Config.UploadConcurrency == 64 && c.S3Config.PartSizeMB == 5120 }},
		{"a cap, a schedule over midnight, a zone and an order", func(m map[string]any) {
			s3("maxUploadMbps", 4.5)(m)
			s3("timeZone", "Europe/Paris")(m)
			s3("uploadOrder", "newest")(m)
			s3("uploadSchedule", []any{map[string]any{"days": []any{"mon", "fri"}, "from": "22:00", "to": "06:00", "mbps": 0},
				map[string]any{"from": "00:00", "to": "24:00", "mbps": 20}})(m)
		}, func(c *Config) bool {
			return c.S3Config.MaxUploadMbps == 4.5 && c.S3Config.UploadOrder == UploadNewest && len(c.S3Config.UploadSchedule) == 2 &&
				c.S3Config.Location().String() == "Europe/Paris"
		}},
		{"the oldest first by default", s3("partConcurrency", 2), func(c *Config) bool { return c.S3Config.UploadOrder == UploadOldest && c.S3Config.MaxUploadMbps == 0 }},
		{"smallest parts", s3("partSizeMB", 5), func(c *Config) bool { return c.S3Config.PartSizeMB == 5 }},
		{"an https endpoint", s3("endpoint", "https://s3.local:9000"), func(c *Config) bool { return c.S3Config.Endpoint == "https://s3.local:9000" }},
		{"listen on any port of loopback", block("api", "listen", "127.0.0.1:0"), func(c *Config) bool { return c.API.Listen == "127.0.0.1:0" }},
		{"listen on localhost without a token", block("api", "listen", "localhost:8080"), func(c *Config) bool { return c.API.Token == "" }},
		{"listen on ::1 without a token", block("api", "listen", "[::1]:8080"), func(c *Config) bool { return c.API.Listen == "[::1]:8080" }},
		{"stall and stop timeouts of a second", func(m map[string]any) {
			block("ffmpeg", "stallTimeout", "1s", "stopTimeout", "1s")(m)
			camera(0, "frameRate", 5)(m)
			camera(1, "frameRate", 5)(m)
		}, func(c *Config) bool { return c.FFmpeg.StopTimeout.Std().Seconds() == 1 }},
		// one frame every 5 s: three in the default 15 s stall timeout
		{"frames exactly often enough for the watchdog", camera(0, "frameRate", 0.2), func(c *Config) bool { return c.Cameras[0].FrameRate == 0.2 }},
		{"every log format", block("log", "format", "console"), func(c *Config) bool { return c.Log.Format == "console" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, errs := parseEdited(t, tt.edit)
			if errs != nil {
				t.Fatalf("rejected: %q", errs)
			}
			if !tt.check(cfg) {
				t.Errorf("loaded, but not as written")
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.3.4.5": true, "::1": true,
		"0.0.0.0": false, "": false, "::": false, "192.168.0.2": false, "localhost.example": false, "nvr.local": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
