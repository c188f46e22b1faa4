package config

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestDesignNoteConfigLoadsAsWritten(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "design-note.json"), noEnv)
	if err != nil {
		t.Fatalf("the design note's config.json must load: %v", err)
	}
	if len(cfg.Cameras) != 2 {
		t.Fatalf("cameras = %d, want 2", len(cfg.Cameras))
	}
	c2 := cfg.Cameras[1]
	if c2.CameraName != "camera2" || c2.FrameRate != 5 || c2.Resolution != "1280x720" || c2.VideoDuration != 300 || c2.VideoFeedID != "xx" {
		t.Errorf("camera2 = %+v", c2)
	}
	if w, h := c2.Size(); w != 1280 || h != 720 {
		t.Errorf("Size = %dx%d", w, h)
	}
	if got := c2.SegmentDuration(); got != 300*time.Second {
		t.Errorf("SegmentDuration = %v", got)
	}
	if got, want := c2.URL().String(), "rtsp://admin:password456@192.168.0.2:554/"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	// No path: the stream is discovered (ONVIF on port 80, then known paths).
	if !c2.NeedsDiscovery() || c2.RTSPPath != "" || c2.Discovery != DiscoveryAuto || c2.ONVIFPort != DefaultONVIFPort {
		t.Errorf("camera2 discovery: needs %v, path %q, discovery %q, onvifPort %d", c2.NeedsDiscovery(), c2.RTSPPath, c2.Discovery, c2.ONVIFPort)
	}
	if c2.MaxFailedLogins != 3 || c2.FailedLoginWindow.Std() != 30*time.Minute {
		t.Errorf("failed-login budget default: %d in %v", c2.MaxFailedLogins, c2.FailedLoginWindow.Std())
	}
	if cfg.S3Config.S3Path != "recordings/2025" || *cfg.S3Config.ForcePathStyle {
		t.Errorf("s3Config = %+v", cfg.S3Config)
	}
	if cfg.StorageConfig.StateDir != "/var/cctv/recordings/.cctvd" {
		t.Errorf("stateDir default = %q", cfg.StorageConfig.StateDir)
	}
	if cfg.StorageConfig.LimitBytes() != 100e9 {
		t.Errorf("LimitBytes = %d", cfg.StorageConfig.LimitBytes())
	}
	if cfg.StorageConfig.CatalogDays() != 30 {
		t.Errorf("catalogRetentionDays default = %d", cfg.StorageConfig.CatalogDays())
	}
	if cfg.API.Listen != DefaultListen || cfg.FFmpeg.StallTimeout.Std() != DefaultStallTimeout {
		t.Errorf("defaults not applied: %+v %+v", cfg.API, cfg.FFmpeg)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "config.example.json"), noEnv)
	if err != nil {
		t.Fatalf("config.example.json must load: %v", err)
	}
	if got, want := cfg.Cameras[0].URL().String(), "rtsp://admin:password123@192.168.0.1:554/Streaming/Channels/101"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	if cfg.Cameras[0].NeedsDiscovery() || !cfg.Cameras[1].NeedsDiscovery() {
		t.Errorf("a camera with rtspPath must not be discovered, one without must be")
	}
	if cfg.StorageConfig.CatalogDays() != DefaultCatalogRetentionDays {
		t.Errorf("catalogRetentionDays = %d", cfg.StorageConfig.CatalogDays())
	}
}

func TestCatalogRetentionZeroKeepsRows(t *testing.T) {
	data := strings.Replace(string(mustRead(t, filepath.Join("testdata", "design-note.json"))),
		`"clearAfterUpload": false,`, `"clearAfterUpload": false, "catalogRetentionDays": 0,`, 1)
	cfg, err := Parse([]byte(data), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StorageConfig.CatalogDays() != 0 {
		t.Errorf("catalogRetentionDays 0 read as %d", cfg.StorageConfig.CatalogDays())
	}
}

func TestTokenFromEnvironment(t *testing.T) {
	data := mustRead(t, filepath.Join("testdata", "design-note.json"))
	cfg, err := Parse(data, func(k string) string {
		if k == TokenEnv {
			return "env-token"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API.Token != "env-token" {
		t.Errorf("token = %q, want it from %s", cfg.API.Token, TokenEnv)
	}
}

// TestConfigErrors changes one thing in the design note's config at a time
// and expects these exact messages.
func TestConfigErrors(t *testing.T) {
	cam := func(m map[string]any, i int) map[string]any {
		return m["cameras"].([]any)[i].(map[string]any)
	}
	tests := []struct {
		name   string
		mutate func(m map[string]any)
		want   []string
	}{
		{"misspelt camera key", func(m map[string]any) { c := cam(m, 1); c["framerate"] = c["frameRate"]; delete(c, "frameRate") },
			[]string{`cameras[1].framerate: unknown field (did you mean "frameRate"?)`}},
		{"unknown top-level key", func(m map[string]any) { m["cameraz"] = 1 },
			[]string{`cameraz: unknown field (did you mean "cameras"?)`}},
		{"unknown key without a near name", func(m map[string]any) { m["storageConfig"].(map[string]any)["zzzzzzzz"] = true },
			[]string{`storageConfig.zzzzzzzz: unknown field`}},
		{"string where a number goes", func(m map[string]any) { cam(m, 0)["frameRate"] = "2" },
			[]string{`cameras[0].frameRate: must be a number, not a string`}},
		{"number where a bool goes", func(m map[string]any) { m["storageConfig"].(map[string]any)["clearAfterUpload"] = 0 },
			[]string{`storageConfig.clearAfterUpload: must be true or false, not a number`}},
		{"cameras not an array", func(m map[string]any) { m["cameras"] = map[string]any{} },
			[]string{`cameras: must be an array, not an object`}},
		{"bad resolution", func(m map[string]any) { cam(m, 1)["resolution"] = "1280*720" },
			[]string{`cameras[1].resolution: "1280*720" is not WIDTHxHEIGHT`}},
		{"odd resolution", func(m map[string]any) { cam(m, 1)["resolution"] = "1281x720" },
			[]string{`cameras[1].resolution: "1281x720" must have an even width and height`}},
		{"tiny resolution", func(m map[string]any) { cam(m, 1)["resolution"] = "8x8" },
			[]string{`cameras[1].resolution: "8x8" is out of range (16 to 8192 per side)`}},
		{"zero frame rate", func(m map[string]any) { cam(m, 0)["frameRate"] = 0 },
			[]string{`cameras[0].frameRate: must be greater than 0 (got 0)`}},
		{"negative duration", func(m map[string]any) { cam(m, 0)["videoDuration"] = -5 },
			[]string{`cameras[0].videoDuration: must be greater than 0 (got -5)`}},
		{"sub-second duration", func(m map[string]any) { cam(m, 0)["videoDuration"] = 0.5 },
			[]string{`cameras[0].videoDuration: must be at least 1 second (got 0.5)`}},
		{"duplicate name", func(m map[string]any) { cam(m, 1)["cameraName"] = "Camera1" },
			[]string{`cameras[1].cameraName: "Camera1" is already used by cameras[0]`}},
		{"name with a slash", func(m map[string]any) { cam(m, 0)["cameraName"] = "../etc" },
			[]string{`cameras[0].cameraName: "../etc" may hold only letters, digits, '.' and '-', starting with a letter or digit (it goes into file names)`}},
		{"name with an underscore", func(m map[string]any) { cam(m, 0)["cameraName"] = "front_door" },
			[]string{`cameras[0].cameraName: "front_door" may hold only letters, digits, '.' and '-', starting with a letter or digit (it goes into file names)`}},
		{"empty name", func(m map[string]any) { cam(m, 0)["cameraName"] = "" },
			[]string{`cameras[0].cameraName: is required`}},
		{"feed id with a slash", func(m map[string]any) { cam(m, 0)["videoFeedId"] = "a/b" },
			[]string{`cameras[0].videoFeedId: "a/b" may hold only letters, digits, '.', '-' and '_', starting with a letter or digit (it goes into file names)`}},
		{"ip with port", func(m map[string]any) { cam(m, 0)["ipAddress"] = "192.168.0.1:554" },
			[]string{`cameras[0].ipAddress: "192.168.0.1:554" holds a port: put the port in rtspPort`}},
		{"ip missing", func(m map[string]any) { delete(cam(m, 0), "ipAddress") },
			[]string{`cameras[0].ipAddress: is required (or set streamUrl)`}},
		{"bad stream url scheme", func(m map[string]any) { cam(m, 0)["streamUrl"] = "ftp://cam/x" },
			[]string{`cameras[0].streamUrl: scheme "ftp" is not one of rtsp, rtsps, http, https, rtmp, file`}},
		{"bad mode", func(m map[string]any) { cam(m, 0)["mode"] = "passthrough" },
			[]string{`cameras[0].mode: "passthrough" is not auto, transcode or copy`}},
		{"bad hwaccel", func(m map[string]any) { cam(m, 0)["hwaccel"] = "cuda" },
			[]string{`cameras[0].hwaccel: "cuda" is not vaapi, qsv or nvenc`}},
		{"bad port", func(m map[string]any) { cam(m, 0)["rtspPort"] = 70000 },
			[]string{`cameras[0].rtspPort: 70000 is not a port number (1 to 65535)`}},
		{"bad onvif port", func(m map[string]any) { cam(m, 0)["onvifPort"] = -80 },
			[]string{`cameras[0].onvifPort: -80 is not a port number (1 to 65535)`}},
		{"bad discovery", func(m map[string]any) { cam(m, 1)["discovery"] = "upnp" },
			[]string{`cameras[1].discovery: "upnp" is not auto, onvif, paths or off`}},
		{"misspelt discovery", func(m map[string]any) { cam(m, 1)["discover"] = "off" },
			[]string{`cameras[1].discover: unknown field (did you mean "discovery"?)`}},
		{"too many failed logins", func(m map[string]any) { cam(m, 0)["maxFailedLogins"] = 500 },
			[]string{`cameras[0].maxFailedLogins: 500 is out of range (1 to 100)`}},
		{"negative failed logins", func(m map[string]any) { cam(m, 1)["maxFailedLogins"] = -1 },
			[]string{`cameras[1].maxFailedLogins: -1 is out of range (1 to 100)`}},
		{"short failed-login window", func(m map[string]any) { cam(m, 1)["failedLoginWindow"] = "10s" },
			[]string{`cameras[1].failedLoginWindow: 10s is out of range (1m to 24h)`}},
		{"fractional port", func(m map[string]any) { cam(m, 0)["rtspPort"] = 55.4 },
			[]string{`cameras[0].rtspPort: must be a whole number, not 55.4`}},
		{"no cameras", func(m map[string]any) { m["cameras"] = []any{} },
			[]string{`cameras: at least one camera is required`}},
		{"zero limit", func(m map[string]any) { m["storageConfig"].(map[string]any)["clearWhenFilePathReachGB"] = 0 },
			[]string{`storageConfig.clearWhenFilePathReachGB: must be greater than 0 (got 0)`}},
		{"empty save path", func(m map[string]any) { m["storageConfig"].(map[string]any)["savePath"] = "" },
			[]string{`storageConfig.savePath: is required`}},
		{"relative save path", func(m map[string]any) { m["storageConfig"].(map[string]any)["savePath"] = "rec" },
			[]string{`storageConfig.savePath: "rec" must be an absolute path`}},
		{"negative catalog retention", func(m map[string]any) { m["storageConfig"].(map[string]any)["catalogRetentionDays"] = -1 },
			[]string{`storageConfig.catalogRetentionDays: must be 0 (keep every row) or a number of days up to 36500 (got -1)`}},
		{"catalog retention of centuries", func(m map[string]any) { m["storageConfig"].(map[string]any)["catalogRetentionDays"] = 40000 },
			[]string{`storageConfig.catalogRetentionDays: must be 0 (keep every row) or a number of days up to 36500 (got 40000)`}},
		{"fractional catalog retention", func(m map[string]any) { m["storageConfig"].(map[string]any)["catalogRetentionDays"] = 1.5 },
			[]string{`storageConfig.catalogRetentionDays: must be a whole number, not 1.5`}},
		{"bad bucket", func(m map[string]any) { m["s3Config"].(map[string]any)["s3Bucket"] = "My_Bucket" },
			[]string{`s3Config.s3Bucket: "My_Bucket" is not a bucket name (3 to 63 lower-case letters, digits, '.' and '-')`}},
		{"bad endpoint", func(m map[string]any) { m["s3Config"].(map[string]any)["endpoint"] = "minio:9000" },
			[]string{`s3Config.endpoint: "minio:9000" is not an http:// or https:// URL`}},
		{"tiny parts", func(m map[string]any) { m["s3Config"].(map[string]any)["partSizeMB"] = 1 },
			[]string{`s3Config.partSizeMB: must be 5 to 5120 (got 1): S3 parts are at least 5 MiB`}},
		{"negative concurrency", func(m map[string]any) { m["s3Config"].(map[string]any)["uploadConcurrency"] = -1 },
			[]string{`s3Config.uploadConcurrency: must be 1 to 64 (got -1)`}},
		{"secret without key id", func(m map[string]any) { m["awsCredentials"].(map[string]any)["accessKeyId"] = "" },
			[]string{`awsCredentials.accessKeyId: is required when secretAccessKey is set`}},
		{"no region", func(m map[string]any) { delete(m["awsCredentials"].(map[string]any), "region") },
			[]string{`awsCredentials.region: is required (or set s3Config.endpoint, which defaults it to us-east-1)`}},
		{"open api without token", func(m map[string]any) { m["api"] = map[string]any{"listen": "0.0.0.0:8080"} },
			[]string{`api.token: is required when api.listen (0.0.0.0:8080) is not a loopback address: set api.token or the CCTVD_API_TOKEN environment variable, or listen on 127.0.0.1`}},
		{"empty declared secret", func(m map[string]any) {
			m["secrets"] = []any{"long-enough-secret", ""}
			cam(m, 1)["secrets"] = []any{""}
		},
			[]string{`cameras[1].secrets[0]: must not be empty`, `secrets[1]: must not be empty`}},
		{"allowed host with a port", func(m map[string]any) {
			m["api"] = map[string]any{"allowedHosts": []any{"nvr.local", "nvr.local:8080"}}
		},
			[]string{`api.allowedHosts[1]: "nvr.local:8080" is not a host name or IP address (no port, no scheme)`}},
		{"tls cert without key", func(m map[string]any) { m["api"] = map[string]any{"tlsCert": "/etc/cctvd/api.crt"} },
			[]string{`api.tlsKey: is required with api.tlsCert`}},
		{"tls key relative", func(m map[string]any) {
			m["api"] = map[string]any{"tlsCert": "/etc/cctvd/api.crt", "tlsKey": "api.key"}
		},
			[]string{`api.tlsKey: "api.key" must be an absolute path`}},
		{"metrics auth without a token", func(m map[string]any) { m["api"] = map[string]any{"metricsAuth": true} },
			[]string{`api.metricsAuth: needs a token: set api.token or the CCTVD_API_TOKEN environment variable`}},
		{"bad stall timeout", func(m map[string]any) { m["ffmpeg"] = map[string]any{"stallTimeout": "soon"} },
			[]string{`decode: "soon" is not a duration such as "15s"`}},
		{"short stall timeout", func(m map[string]any) { m["ffmpeg"] = map[string]any{"stallTimeout": 0.2} },
			[]string{`ffmpeg.stallTimeout: must be at least 1s (got 200ms)`}},
		{"frames too rare for the stall watchdog", func(m map[string]any) { cam(m, 0)["frameRate"] = 0.05 },
			[]string{`cameras[0].frameRate: 0.05 fps is one frame every 20s, not well below ffmpeg.stallTimeout (15s): raise frameRate or ffmpeg.stallTimeout`}},
		{"frames too rare for a shorter stall timeout", func(m map[string]any) {
			cam(m, 1)["frameRate"] = 0.3
			m["ffmpeg"] = map[string]any{"stallTimeout": "9s"}
		}, []string{`cameras[1].frameRate: 0.3 fps is one frame every 3.333s, not well below ffmpeg.stallTimeout (9s): raise frameRate or ffmpeg.stallTimeout`}},
		{"configureCamera without ONVIF", func(m map[string]any) {
			cam(m, 0)["configureCamera"] = true
			cam(m, 0)["rtspPath"] = "/live"
		}, []string{`cameras[0].configureCamera: needs ONVIF discovery: no rtspPath or streamUrl, discovery auto or onvif`}},
		{"configureCamera at a fractional rate", func(m map[string]any) {
			cam(m, 1)["configureCamera"] = true
			cam(m, 1)["frameRate"] = 2.5
		}, []string{`cameras[1].configureCamera: ONVIF asks a camera for whole frame rates, not 2.5 fps`}},
		{"bad sync interval", func(m map[string]any) { m["storageConfig"].(map[string]any)["syncInterval"] = "10ms" },
			[]string{`storageConfig.syncInterval: must be 0 (off) or from 100ms to 1m (got 10ms)`}},
		{"bad log level", func(m map[string]any) { m["log"] = map[string]any{"level": "loud"} },
			[]string{`log.level: "loud" is not one of debug, info, warn, error`}},
		{"several problems at once", func(m map[string]any) {
			cam(m, 0)["resolution"] = "big"
			cam(m, 1)["frameRate"] = -1
			m["storageConfig"].(map[string]any)["clearWhenFilePathReachGB"] = -1
		}, []string{
			`cameras[0].resolution: "big" is not WIDTHxHEIGHT`,
			`cameras[1].frameRate: must be greater than 0 (got -1)`,
			`storageConfig.clearWhenFilePathReachGB: must be greater than 0 (got -1)`,
		}},
	}
	base := mustRead(t, filepath.Join("testdata", "design-note.json"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(base, &m); err != nil {
				t.Fatal(err)
			}
			tt.mutate(m)
			data, _ := json.Marshal(m)
			_, err := Parse(data, noEnv)
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			var got []string
			var ve *ValidationError
			if errors.As(err, &ve) {
				for _, p := range ve.Problems {
					got = append(got, p.Error())
				}
			} else {
				got = []string{err.Error()}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSyntaxErrorSaysWhere(t *testing.T) {
	_, err := Parse([]byte("{\n  \"cameras\": [,]\n}"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "line 2, column 15") {
		t.Fatalf("err = %v, want the line and column", err)
	}
	_, err = Parse(nil, noEnv)
	if err == nil || err.Error() != "invalid JSON: the file is empty" {
		t.Fatalf("empty file: err = %v", err)
	}
}

// TestCameraURLEscapesCredentials checks that passwords with URL delimiters
// survive the round trip ffmpeg makes when it splits the URL.
func TestCameraURLEscapesCredentials(t *testing.T) {
	tests := []struct {
		name string
		cam  Camera
		want string
	}{
		{"delimiters", Camera{IPAddress: "10.0.0.5", UserName: "ad@min", Password: "p@ss:/#%word", RTSPPort: 8554, RTSPPath: "/live"},
			"rtsp://ad%40min:p%40ss%3A%2F%23%25word@10.0.0.5:8554/live"},
		{"no credentials", Camera{IPAddress: "cam.local", RTSPPort: 554, RTSPPath: "/"}, "rtsp://cam.local:554/"},
		{"no path, discovery off", Camera{IPAddress: "cam.local", RTSPPort: 554, Discovery: DiscoveryOff}, "rtsp://cam.local:554/"},
		{"user only", Camera{IPAddress: "::1", UserName: "viewer", RTSPPort: 554, RTSPPath: "/"}, "rtsp://viewer@[::1]:554/"},
		{"query in path", Camera{IPAddress: "10.0.0.6", RTSPPort: 554, RTSPPath: "/cam/realmonitor?channel=1&subtype=0"},
			"rtsp://10.0.0.6:554/cam/realmonitor?channel=1&subtype=0"},
		{"stream url gets credentials", Camera{StreamURL: "rtsp://10.0.0.7:554/h264", UserName: "u", Password: "a b"},
			"rtsp://u:a%20b@10.0.0.7:554/h264"},
		{"stream url keeps its own", Camera{StreamURL: "rtsp://x:y@10.0.0.7/h264", UserName: "u", Password: "z"},
			"rtsp://x:y@10.0.0.7/h264"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.cam.URL()
			if got := u.String(); got != tt.want {
				t.Fatalf("URL = %q, want %q", got, tt.want)
			}
			back, err := url.Parse(u.String())
			if err != nil {
				t.Fatal(err)
			}
			if tt.cam.StreamURL == "" && tt.cam.Password != "" {
				if p, _ := back.User.Password(); p != tt.cam.Password {
					t.Errorf("password round trip = %q", p)
				}
			}
			if tt.cam.Password != "" && strings.Contains(tt.cam.RedactedURL(), tt.cam.Password) {
				t.Errorf("RedactedURL %q holds the password", tt.cam.RedactedURL())
			}
		})
	}
}

func TestMaskedHidesEverySecret(t *testing.T) {
	data := mustRead(t, filepath.Join("testdata", "design-note.json"))
	cfg, err := Parse(data, func(string) string { return "tok-123456" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cameras[0].StreamURL = "rtsp://u:inline-secret@10.1.1.1/x"
	out, err := cfg.MaskedJSON()
	if err != nil {
		t.Fatal(err)
	}
	secrets := cfg.Secrets()
	if len(secrets) != 5 {
		t.Fatalf("Secrets = %d, want 5 (2 passwords, 1 URL password, AWS secret, token)", len(secrets))
	}
	for _, s := range secrets {
		if strings.Contains(string(out), s) {
			t.Errorf("masked output holds secret %q", s)
		}
	}
	if cfg.Cameras[0].Password != "password123" {
		t.Error("Masked changed the original config")
	}
	// The masked config still parses: check-config output can be reused.
	if _, err := Parse(out, noEnv); err != nil {
		t.Errorf("masked config does not parse: %v", err)
	}
}

// TestStreamURLSecrets: the credentials a stream URL carries (userinfo, a
// query token, an RTMP stream key) and the declared secrets are secrets:
// in Secrets for the log redactor, masked in RedactedURL and in the
// check-config dump, which still parses.
func TestStreamURLSecrets(t *testing.T) {
	tests := []struct {
		name     string
		cam      Camera
		secrets  []string
		redacted string
	}{
		{"query token", Camera{StreamURL: "rtsp://10.0.0.7/live?channel=1&token=tok-abc123"},
			[]string{"tok-abc123"}, "rtsp://10.0.0.7/live?channel=1&token=***"},
		{"short query password", Camera{StreamURL: "http://10.0.0.9/video.cgi?user=admin&pwd=12345"},
			[]string{"12345"}, "http://10.0.0.9/video.cgi?user=admin&pwd=***"},
		{"rtmp stream key", Camera{StreamURL: "rtmp://10.0.0.8/live/sk_9f8e7d"},
			[]string{"sk_9f8e7d"}, "rtmp://10.0.0.8/live/***"},
		{"rtmp app alone is no key", Camera{StreamURL: "rtmp://10.0.0.8/live"}, nil, "rtmp://10.0.0.8/live"},
		{"userinfo", Camera{StreamURL: "rtsp://admin:12345@10.0.0.1/x"}, []string{"12345"}, "rtsp://admin:***@10.0.0.1/x"},
		{"declared path segment", Camera{StreamURL: "https://10.0.0.10/s/abcdef123456/live.m3u8", DeclaredSecrets: []string{"abcdef123456"}},
			[]string{"abcdef123456"}, "https://10.0.0.10/s/***/live.m3u8"},
		{"declared short segment", Camera{StreamURL: "https://10.0.0.10/s/k1/live.m3u8", DeclaredSecrets: []string{"k1"}},
			[]string{"k1"}, "https://10.0.0.10/s/***/live.m3u8"},
		{"rtspPath query password", Camera{IPAddress: "10.0.0.6", RTSPPort: 554, RTSPPath: "/cam?channel=1&password=12345"},
			[]string{"12345"}, "rtsp://10.0.0.6:554/cam?channel=1&password=***"},
		{"camera password added to the url", Camera{StreamURL: "rtsp://10.0.0.7/h264", UserName: "u", Password: "pa ss"},
			[]string{"pa ss"}, "rtsp://u:***@10.0.0.7/h264"},
	}
	base := mustRead(t, filepath.Join("testdata", "design-note.json"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cam.Secrets()
			if strings.Join(got, "|") != strings.Join(tt.secrets, "|") {
				t.Errorf("Secrets = %q, want %q", got, tt.secrets)
			}
			if r := tt.cam.RedactedURL(); r != tt.redacted {
				t.Errorf("RedactedURL = %q, want %q", r, tt.redacted)
			}
			cfg, err := Parse(base, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			c := tt.cam
			c.CameraName, c.FrameRate, c.Resolution, c.VideoDuration, c.VideoFeedID = "cam", 2, "640x360", 10, "xx"
			if c.RTSPPort == 0 {
				c.RTSPPort, c.RTSPPath = 554, "/"
			}
			c.RTSPTransport, c.Mode = "tcp", ModeAuto
			c.ONVIFPort, c.Discovery = DefaultONVIFPort, DiscoveryAuto
			c.MaxFailedLogins, c.FailedLoginWindow = DefaultMaxFailedLogins, Duration(DefaultFailedLoginWindow)
			cfg.Cameras = []Camera{c}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("test camera invalid: %v", err)
			}
			out, err := cfg.MaskedJSON()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.secrets {
				for _, line := range strings.Split(string(out), "\n") {
					if strings.Contains(line, `"streamUrl"`) || strings.Contains(line, `"rtspPath"`) || strings.Contains(line, `"password"`) {
						if strings.Contains(line, s) {
							t.Errorf("check-config shows %q: %s", s, line)
						}
					}
				}
			}
			if _, err := Parse(out, noEnv); err != nil {
				t.Errorf("masked config does not parse: %v\n%s", err, out)
			}
		})
	}
}

func TestDeclaredSecrets(t *testing.T) {
	data := mustRead(t, filepath.Join("testdata", "design-note.json"))
	var m map[string]any
	json.Unmarshal(data, &m)
	m["secrets"] = []any{"global-declared-1"}
	m["cameras"].([]any)[0].(map[string]any)["secrets"] = []any{"camera-declared-1"}
	data, _ = json.Marshal(m)
	cfg, err := Parse(data, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cfg.Secrets(), "|")
	for _, want := range []string{"global-declared-1", "camera-declared-1"} {
		if !strings.Contains(got, want) {
			t.Errorf("Secrets %q lacks %q", got, want)
		}
	}
	out, _ := cfg.MaskedJSON()
	if strings.Contains(string(out), "declared-1") {
		t.Errorf("check-config shows a declared secret:\n%s", out)
	}
}

func TestDurationAcceptsStringsAndSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{`"1m30s"`: 90 * time.Second, `2.5`: 2500 * time.Millisecond, `"15s"`: 15 * time.Second} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.Std() != want {
			t.Errorf("%s -> %v, %v; want %v", in, d.Std(), err, want)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`true`), &d); err == nil {
		t.Error("true decoded as a duration")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParse feeds arbitrary bytes to the decoder and validator: they must
// return a config or an error, never panic, and a config they accept must
// be valid and survive masking and parsing again.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/design-note.json", "../config.example.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"cameras": [{"cameraName": "a_b", "resolution": "1x1"}]}`))
	f.Add([]byte(`{"cameras": null, "s3Config": [], "api": {"listen": ":"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, noEnv)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate rejects: %v", err)
		}
		masked, err := cfg.MaskedJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(masked, noEnv); err != nil {
			t.Fatalf("the masked config does not parse: %v", err)
		}
	})
}

// TestErrorsShowNoSecret: a value quoted in an error must not show a
// secret: a password pasted into ipAddress, the camera's own password in
// a bad rtspPath, a password in the endpoint's URL.
func TestErrorsShowNoSecret(t *testing.T) {
	base := string(mustRead(t, filepath.Join("testdata", "design-note.json")))
	for _, tt := range []struct{ name, from, to, field, secret string }{
		{"password in ipAddress", `"ipAddress": "192.168.0.1"`, `"ipAddress": "admin:VeryS3cretPass@192.168.0.1"`, "cameras[0].ipAddress", "VeryS3cretPass"},
		{"short password in a bad rtspPath", `"password": "password456"`, `"password": "12345", "rtspPath": "/live?loginpas=12345#main"`, "cameras[1].rtspPath", "12345"},
		{"password in the endpoint", `"s3Path": "recordings/2025"`, `"s3Path": "recordings/2025", "endpoint": "ftp://u:EndpointS3cret@minio:9000"`, "s3Config.endpoint", "EndpointS3cret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := strings.Replace(base, tt.from, tt.to, 1)
			if data == base {
				t.Fatalf("%s not found in the design note", tt.from)
			}
			_, err := Parse([]byte(data), noEnv)
			if err == nil {
				t.Fatal("the config loaded")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("the error does not name %s: %v", tt.field, err)
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}
