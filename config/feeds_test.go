package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSubStreamErrors: each bad subStream and uploadFeeds, with its exact
// message naming the field.
func TestSubStreamErrors(t *testing.T) {
	sub := func(v any) edit { return camera(0, "subStream", v) }
	tests := []struct {
		name string
		edit edit
		want string
	}{
		{"a word that is not auto", sub("yes"), `cameras[0].subStream: "yes" is not "auto" or an object such as {"rtspPath": "/Streaming/Channels/102"}`},
		{"a number", sub(2), `cameras[0].subStream: must be an object, not a number`},
		{"a misspelt key", sub(map[string]any{"rtspPth": "/sub"}), `cameras[0].subStream.rtspPth: unknown field (did you mean "rtspPath"?)`},
		{"the main's feed id", sub(map[string]any{"rtspPath": "/sub", "videoFeedId": "xx"}),
			`cameras[0].subStream.videoFeedId: "xx" is the main feed's videoFeedId: the two feeds' files must be told apart`},
		{"a feed id with a slash", sub(map[string]any{"rtspPath": "/sub", "videoFeedId": "a/b"}),
			`cameras[0].subStream.videoFeedId: "a/b" may hold only letters, digits, '.', '-' and '_', starting with a letter or digit (it goes into file names)`},
		{"a default feed id too long", func(m map[string]any) {
			camera(0, "videoFeedId", strings.Repeat("f", MaxCameraNameLen))(m)
			sub("auto")(m)
		}, `cameras[0].subStream.videoFeedId: the default "` + strings.Repeat("f", MaxCameraNameLen) + `-sub" is longer than 64 characters: set one`},
		{"the main's own path", func(m map[string]any) {
			camera(0, "rtspPath", "/Streaming/Channels/101")(m)
			sub(map[string]any{"rtspPath": "/Streaming/Channels/101"})(m)
		}, `cameras[0].subStream.rtspPath: is the main stream's own path: the sub stream is another`},
		{"a fragment in the path", sub(map[string]any{"rtspPath": "/sub#1?password=x"}),
			`cameras[0].subStream.rtspPath: "/sub#1?..." is not a URL path such as /Streaming/Channels/102`},
		{"auto without discovery", func(m map[string]any) {
			camera(0, "discovery", "off")(m)
			sub("auto")(m)
		}, `cameras[0].subStream: "auto" needs discovery: give rtspPath, or set discovery to auto, onvif or paths`},
		{"auto with a stream URL", func(m map[string]any) {
			camera(0, "streamUrl", "rtsp://cam.local/main")(m)
			camera(0, "ipAddress", "")(m)
			sub("auto")(m)
		}, `cameras[0].subStream: "auto" needs the camera's ipAddress to discover the stream: give rtspPath`},
		{"an unknown policy", s3("uploadFeeds", "main"), `s3Config.uploadFeeds: "main" is not all, sub or sub+schedule`},
		{"sub+schedule without a schedule", s3("uploadFeeds", "sub+schedule"),
			`s3Config.uploadFeeds: "sub+schedule" needs s3Config.uploadSchedule: the main feeds go up inside its windows`},
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

// TestSubStreamAccepted: the forms of subStream, the derived feed id and
// the sub run's camera.
func TestSubStreamAccepted(t *testing.T) {
	tests := []struct {
		name  string
		edit  edit
		check func(c *Config) bool
	}{
		{"none: one feed, as the design note", func(map[string]any) {}, func(c *Config) bool {
			_, ok := c.Cameras[0].SubCamera()
			return !ok && len(c.Cameras[0].Feeds()) == 1 && c.S3Config.UploadFeeds == UploadFeedsAll
		}},
		{"auto: discovered, feed id derived", camera(0, "subStream", "auto"), func(c *Config) bool {
			sub, ok := c.Cameras[0].SubCamera()
			return ok && sub.VideoFeedID == "xx-sub" && sub.NeedsDiscovery() && sub.IsSub() && sub.Mode == ModeCopy &&
				sub.CameraName == "camera1" && sub.Password == "password123" && c.Cameras[0].FeedOf("xx-sub") == FeedSub &&
				c.Cameras[0].FeedOf("xx") == FeedMain && c.Cameras[0].FeedOf("yy") == ""
		}},
		{"a path without its slash and a feed id", camera(0, "subStream", map[string]any{"rtspPath": "Streaming/Channels/102", "videoFeedId": "low"}),
			func(c *Config) bool {
				sub, _ := c.Cameras[0].SubCamera()
				return sub.VideoFeedID == "low" && sub.RTSPPath == "/Streaming/Channels/102" && !sub.NeedsDiscovery() &&
					sub.URL().String() == "rtsp://admin:password123@192.168.0.1:554/Streaming/Channels/102"
			}},
		{"an object without a path is auto with its own id", camera(0, "subStream", map[string]any{"videoFeedId": "low"}),
			func(c *Config) bool {
				sub, _ := c.Cameras[0].SubCamera()
				return sub.VideoFeedID == "low" && sub.NeedsDiscovery()
			}},
		{"a stream URL gets the sub path", func(m map[string]any) {
			camera(0, "streamUrl", "rtsp://cam.local:8554/cam/realmonitor?channel=1&subtype=0")(m)
			camera(0, "subStream", map[string]any{"rtspPath": "/cam/realmonitor?channel=1&subtype=1"})(m)
		}, func(c *Config) bool {
			sub, _ := c.Cameras[0].SubCamera()
			return sub.URL().String() == "rtsp://admin:password123@cam.local:8554/cam/realmonitor?channel=1&subtype=1"
		}},
		{"activity on the sub feed only", camera(0, "subStream", "auto"), func(c *Config) bool {
			sub, _ := c.Cameras[0].SubCamera()
			return sub.AnalysesActivity() && !c.Cameras[0].AnalysesActivity() && c.Cameras[1].AnalysesActivity()
		}},
		{"activity off: neither feed", func(m map[string]any) {
			camera(0, "subStream", "auto")(m)
			camera(0, "activity", false)(m)
		}, func(c *Config) bool {
			sub, _ := c.Cameras[0].SubCamera()
			return !sub.AnalysesActivity() && !c.Cameras[0].AnalysesActivity()
		}},
		{"the policies", func(m map[string]any) {
			s3("uploadFeeds", "sub+schedule")(m)
			s3("uploadSchedule", []any{map[string]any{"from": "01:00", "to": "05:00", "mbps": 50}})(m)
		}, func(c *Config) bool { return c.S3Config.UploadFeeds == UploadFeedsSubSchedule }},
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

// TestSubStreamSecretsMasked: a credential in the sub path's query is a
// secret, masked in the config dump, and "auto" dumps as it was written.
func TestSubStreamSecretsMasked(t *testing.T) {
	cfg, errs := parseEdited(t, camera(0, "subStream", map[string]any{"rtspPath": "/sub?user=a&password=subsecret99"}),
		camera(1, "subStream", "auto"))
	if errs != nil {
		t.Fatal(errs)
	}
	found := false
	for _, s := range cfg.Secrets() {
		found = found || s == "subsecret99"
	}
	if !found {
		t.Errorf("the sub path's password is not among the secrets")
	}
	out, err := cfg.MaskedJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "subsecret99") {
		t.Errorf("masked dump shows the sub path's password:\n%s", out)
	}
	var back struct {
		Cameras []struct {
			SubStream json.RawMessage `json:"subStream"`
		} `json:"cameras"`
	}
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if string(back.Cameras[1].SubStream) != `"auto"` {
		t.Errorf("auto dumps as %s", back.Cameras[1].SubStream)
	}
}
