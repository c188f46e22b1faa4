package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
)

// A camera's two feeds. Every camera records its main stream, as the
// design note configures it; one with a subStream records its sub stream
// too (typically 640x360 at a fraction of the main's bitrate), as a feed
// of its own: its own videoFeedId in its file names
// ({cameraName}_{videoFeedId}_{start}_{end}), its own ffmpeg and RTSP
// session, the camera's credentials and failed-login budget.

// The feeds of a camera, as Camera.Feed and the API name them.
const (
	FeedMain = "main"
	FeedSub  = "sub"
)

// SubStreamAuto is subStream's "auto": the stream is found by discovery
// (ONVIF's lowest-resolution profile, else a vendor's known sub-stream
// path).
const SubStreamAuto = "auto"

// SubFeedSuffix makes a sub feed's default videoFeedId: the main's with
// it appended ("xx" records its sub stream as "xx-sub").
const SubFeedSuffix = "-sub"

// SubStream is a camera's second stream. In the file it is "auto", or an
// object: {"rtspPath": "/Streaming/Channels/102", "videoFeedId": "xx-low"};
// an object without rtspPath is "auto" with its own videoFeedId.
type SubStream struct {
	// RTSPPath is the sub stream's path on the camera (with its query, as
	// "/cam/realmonitor?channel=1&subtype=1"). On a camera given by
	// streamUrl it replaces that URL's path and query. Empty: found by
	// discovery, as "auto".
	RTSPPath string `json:"rtspPath,omitempty"`
	// VideoFeedID names the sub feed's files. Default: the main's
	// videoFeedId with SubFeedSuffix; it must differ from the main's.
	VideoFeedID string `json:"videoFeedId,omitempty"`
}

// subStreamFields is SubStream's object form, for decoding and checkShape.
type subStreamFields SubStream

var (
	typeOfSubStream       = reflect.TypeFor[SubStream]()
	typeOfSubStreamFields = reflect.TypeFor[subStreamFields]()
)

// UnmarshalJSON reads "auto" or the object form.
func (s *SubStream) UnmarshalJSON(data []byte) error {
	var word string
	if err := json.Unmarshal(data, &word); err == nil {
		if word != SubStreamAuto {
			return fmt.Errorf("%q is not \"auto\" or an object", word)
		}
		*s = SubStream{}
		return nil
	}
	var f subStreamFields
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	*s = SubStream(f)
	return nil
}

// Auto says whether the sub stream is found by discovery.
func (s SubStream) Auto() bool { return s.RTSPPath == "" }

// FeedID is the sub feed's videoFeedId for a camera whose main feed is main.
func (s SubStream) FeedID(main string) string {
	if s.VideoFeedID != "" {
		return s.VideoFeedID
	}
	return main + SubFeedSuffix
}

// IsSub says whether cam is the derived run of a camera's sub stream.
func (cam Camera) IsSub() bool { return cam.Feed == FeedSub }

// SubCamera returns the camera's sub stream as a camera run of its own:
// the same name, address, credentials and login budget; the sub feed's
// videoFeedId; its path (or discovery, for "auto"); recorded in copy mode
// (the camera already encodes it small). ok is false without a subStream.
func (cam Camera) SubCamera() (sub Camera, ok bool) {
	if cam.SubStream == nil {
		return Camera{}, false
	}
	ss := *cam.SubStream
	sub = cam
	sub.SubStream, sub.Feed = nil, FeedSub
	sub.VideoFeedID = ss.FeedID(cam.VideoFeedID)
	sub.Mode, sub.HWAccel, sub.HWAccelDevice = ModeCopy, "", ""
	sub.ConfigureCamera = false // the camera's encoder is configured for the main stream only
	switch {
	case ss.Auto():
		sub.RTSPPath, sub.StreamURL = "", ""
	case cam.StreamURL != "":
		u, err := url.Parse(cam.StreamURL)
		if err == nil {
			path, query, _ := strings.Cut(ss.RTSPPath, "?")
			u.Path, u.RawPath, u.RawQuery = path, "", query
			sub.StreamURL = u.String()
		}
	default:
		sub.RTSPPath = ss.RTSPPath
	}
	return sub, true
}

// AnalysesActivity says whether this run of a camera feeds the activity
// index: one feed per camera is analysed, its sub feed when it has one
// (its keyframes are far cheaper to decode), else its main feed; never
// with activity off.
func (cam Camera) AnalysesActivity() bool {
	return cam.ActivityEnabled() && (cam.IsSub() || cam.SubStream == nil)
}

// Feeds returns the camera's runs: the main feed, then the sub feed if
// it has one.
func (cam Camera) Feeds() []Camera {
	if sub, ok := cam.SubCamera(); ok {
		return []Camera{cam, sub}
	}
	return []Camera{cam}
}

// FeedOf says which feed of cam a segment's videoFeedId is: FeedMain,
// FeedSub, or "" for neither (a feed id of an earlier config).
func (cam Camera) FeedOf(feedID string) string {
	switch {
	case feedID == cam.VideoFeedID:
		return FeedMain
	case cam.SubStream != nil && feedID == cam.SubStream.FeedID(cam.VideoFeedID):
		return FeedSub
	}
	return ""
}

// The upload policies (s3Config.uploadFeeds).
const (
	// UploadFeedsAll: both feeds go up, a camera's sub feed before its
	// main within the queue's order (the default).
	UploadFeedsAll = "all"
	// UploadFeedsSub: the sub feeds go up continuously; a main feed only
	// on request (POST /api/v1/cameras/{name}/upload).
	UploadFeedsSub = "sub"
	// UploadFeedsSubSchedule: the sub feeds continuously, the main feeds
	// inside the uploadSchedule's windows that let uploads run (and on
	// request).
	UploadFeedsSubSchedule = "sub+schedule"
)

func (cam Camera) validateSub(v *validator, p string) {
	ss := cam.SubStream
	if ss == nil {
		return
	}
	p += ".subStream"
	id := ss.FeedID(cam.VideoFeedID)
	switch {
	case ss.VideoFeedID == "" && len(id) > MaxCameraNameLen:
		v.add(p+".videoFeedId", "the default %q is longer than %d characters: set one", id, MaxCameraNameLen)
	case len(id) > MaxCameraNameLen:
		v.add(p+".videoFeedId", "%q is longer than %d characters", id, MaxCameraNameLen)
	case !feedIDRe.MatchString(id):
		v.add(p+".videoFeedId", "%q may hold only letters, digits, '.', '-' and '_', starting with a letter or digit (it goes into file names)", id)
	case id == cam.VideoFeedID:
		v.add(p+".videoFeedId", "%q is the main feed's videoFeedId: the two feeds' files must be told apart", id)
	}
	if ss.Auto() {
		switch {
		case cam.Discovery == DiscoveryOff:
			v.add(p, "\"auto\" needs discovery: give rtspPath, or set discovery to auto, onvif or paths")
		case cam.IPAddress == "":
			v.add(p, "\"auto\" needs the camera's ipAddress to discover the stream: give rtspPath")
		}
		return
	}
	if u, err := url.Parse(ss.RTSPPath); err != nil || u.Scheme != "" || u.Host != "" || u.Fragment != "" {
		shown, _, hasQuery := strings.Cut(ss.RTSPPath, "?")
		if hasQuery {
			shown += "?..." // a query may carry a password: not shown
		}
		v.add(p+".rtspPath", "%q is not a URL path such as /Streaming/Channels/102", shown)
	}
	if sub, _ := cam.SubCamera(); sub.URL().String() == cam.URL().String() {
		v.add(p+".rtspPath", "is the main stream's own path: the sub stream is another")
	}
}

func (s S3Config) validateFeeds(v *validator) {
	switch s.UploadFeeds {
	case UploadFeedsAll, UploadFeedsSub:
	case UploadFeedsSubSchedule:
		if len(s.UploadSchedule) == 0 {
			v.add("s3Config.uploadFeeds", "%q needs s3Config.uploadSchedule: the main feeds go up inside its windows", s.UploadFeeds)
		}
	default:
		v.add("s3Config.uploadFeeds", "%q is not %s, %s or %s", s.UploadFeeds, UploadFeedsAll, UploadFeedsSub, UploadFeedsSubSchedule)
	}
}

// normalizeSub puts a leading slash on the sub stream's path.
func (cam *Camera) normalizeSub() {
	if ss := cam.SubStream; ss != nil && ss.RTSPPath != "" && !strings.HasPrefix(ss.RTSPPath, "/") {
		ss.RTSPPath = "/" + ss.RTSPPath
	}
}

// subSecrets are the credentials in the sub stream's path's query.
func (cam Camera) subSecrets() []string {
	if cam.SubStream == nil {
		return nil
	}
	if _, q, ok := strings.Cut(cam.SubStream.RTSPPath, "?"); ok {
		return queryCredentials(q)
	}
	return nil
}

// MarshalJSON writes "auto" for a discovered sub stream of the default
// feed id, else the object.
func (s SubStream) MarshalJSON() ([]byte, error) {
	if s.Auto() && s.VideoFeedID == "" {
		return json.Marshal(SubStreamAuto)
	}
	return json.Marshal(subStreamFields(s))
}
