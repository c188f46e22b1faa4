package discovery

import (
	"testing"

	"github.com/cctvd/cctvd/onvif"
)

func TestChoose(t *testing.T) {
	main1080 := onvif.Profile{Token: "main", Name: "mainStream", Encoding: "H264", Width: 1920, Height: 1080, FPS: 25}
	sub360 := onvif.Profile{Token: "sub", Name: "subStream", Encoding: "H264", Width: 640, Height: 360, FPS: 5}
	sub720at5 := onvif.Profile{Token: "sub720", Encoding: "H264", Width: 1280, Height: 720, FPS: 5}
	sub720at10 := onvif.Profile{Token: "sub720f", Encoding: "H264", Width: 1280, Height: 720, FPS: 10}
	sub720at2 := onvif.Profile{Token: "sub720s", Encoding: "H264", Width: 1280, Height: 720, FPS: 2}
	hevc1080at2 := onvif.Profile{Token: "hevc", Encoding: "H265", Width: 1920, Height: 1080, FPS: 2}
	jpeg360 := onvif.Profile{Token: "jpeg", Encoding: "JPEG", Width: 640, Height: 360, FPS: 5}
	mpeg4_360 := onvif.Profile{Token: "mpeg4", Encoding: "MPEG4", Width: 640, Height: 360, FPS: 5}
	main1440 := onvif.Profile{Token: "m1440", Encoding: "H264", Width: 2560, Height: 1440, FPS: 25}
	main720 := onvif.Profile{Token: "m720", Encoding: "H264", Width: 1280, Height: 720, FPS: 25}
	sub480 := onvif.Profile{Token: "s480", Encoding: "H264", Width: 704, Height: 480, FPS: 25}
	noRate := onvif.Profile{Token: "norate", Encoding: "H264", Width: 1280, Height: 720}
	audioOnly := onvif.Profile{Token: "audio"}

	tests := []struct {
		name     string
		profiles []onvif.Profile
		res      [2]int
		fps      float64
		want     string
		copy     bool
	}{
		// The design note's cameras on a typical two-stream camera.
		{"camera1: 1080p at 2 fps from a 25 fps main stream", []onvif.Profile{main1080, sub360}, [2]int{1920, 1080}, 2, "main", false},
		{"camera2: 720p at 5 fps, a sub stream that is exactly that", []onvif.Profile{main1080, sub720at5}, [2]int{1280, 720}, 5, "sub720", true},
		{"a slower exact stream is copied too (fps at most the configured)", []onvif.Profile{main1080, sub720at2}, [2]int{1280, 720}, 5, "sub720s", true},
		{"two copyable: the faster", []onvif.Profile{sub720at2, sub720at5}, [2]int{1280, 720}, 5, "sub720", true},
		{"H.265 copies", []onvif.Profile{main1080, hevc1080at2}, [2]int{1920, 1080}, 2, "hevc", true},
		{"exact size but faster than configured: transcode from it, not from 1080p", []onvif.Profile{main1080, sub720at10}, [2]int{1280, 720}, 5, "sub720f", false},
		{"smallest profile at least as large", []onvif.Profile{main1080, main720, sub360}, [2]int{1280, 720}, 5, "m720", false},
		{"large enough but too slow loses to large and fast enough", []onvif.Profile{hevc1080at2, main1440}, [2]int{1280, 720}, 5, "m1440", false},
		{"nothing as large as configured: the largest", []onvif.Profile{sub360, main720}, [2]int{1920, 1080}, 5, "m720", false},
		{"JPEG at the size is not copied; same size H.264 wins the tie", []onvif.Profile{jpeg360, sub360}, [2]int{640, 360}, 2, "sub", false},
		{"only JPEG and MPEG4: transcode, the camera's order", []onvif.Profile{jpeg360, mpeg4_360}, [2]int{640, 360}, 5, "jpeg", false},
		{"unknown frame rate: not copied, still a candidate", []onvif.Profile{noRate, main1080}, [2]int{1280, 720}, 5, "norate", false},
		{"profiles without a video encoder are skipped", []onvif.Profile{audioOnly, sub480}, [2]int{704, 480}, 25, "s480", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Choose(tt.profiles, tt.res[0], tt.res[1], tt.fps)
			if !ok {
				t.Fatal("no choice")
			}
			if got.Profile.Token != tt.want || got.Copy != tt.copy {
				t.Errorf("chose %s (copy %v): %s; want %s (copy %v)", got.Profile.Token, got.Copy, got.Why, tt.want, tt.copy)
			}
			if got.Why == "" {
				t.Error("no reason given")
			}
		})
	}
	// Nothing configured (probe-camera without --resolution): the largest.
	if got, _ := Choose([]onvif.Profile{sub360, main1080, jpeg360}, 0, 0, 0); got.Profile.Token != "main" || !got.Copy {
		t.Errorf("without a configured size: chose %+v", got)
	}
	if _, ok := Choose([]onvif.Profile{audioOnly}, 640, 360, 5); ok {
		t.Error("chose a profile without video")
	}
}

func TestCopyable(t *testing.T) {
	tests := []struct {
		codec  string
		w, h   int
		fps    float64
		ok     bool
		reason string
	}{
		{"h264", 1280, 720, 5, true, ""},
		{"hevc", 1280, 720, 5.04, true, ""}, // within 1 %
		{"H265", 1280, 720, 2, true, ""},
		{"mjpeg", 1280, 720, 5, false, "its codec mjpeg is not H.264 or H.265"},
		{"h264", 1920, 1080, 5, false, "it is 1920x1080, not 1280x720"},
		{"h264", 1280, 720, 0, false, "its frame rate is unknown"},
		{"h264", 1280, 720, 25, false, "its 25 fps is above the configured 5"},
	}
	for _, tt := range tests {
		ok, why := Copyable(tt.codec, tt.w, tt.h, tt.fps, 1280, 720, 5)
		if ok != tt.ok || why != tt.reason {
			t.Errorf("Copyable(%s %dx%d@%v) = %v %q, want %v %q", tt.codec, tt.w, tt.h, tt.fps, ok, why, tt.ok, tt.reason)
		}
	}
}

func TestVideoIn(t *testing.T) {
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Session\r\nt=0 0\r\n" +
		"m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"
	if v, c := videoIn([]byte(sdp)); !v || c != "H264" {
		t.Errorf("video %v codec %q", v, c)
	}
	if v, _ := videoIn([]byte("v=0\r\nm=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")); v {
		t.Error("video found in an audio-only SDP")
	}
	if v, c := videoIn([]byte("v=0\nm=video 0 RTP/AVP 26\n")); !v || c != "" {
		t.Errorf("static payload type: video %v codec %q", v, c)
	}
}

// TestChooseSub: the sub stream is the lowest-resolution profile with
// video, H.264/H.265 before another codec of its size; one profile alone
// is the main stream, no sub.
func TestChooseSub(t *testing.T) {
	main := onvif.Profile{Token: "main", Encoding: "H264", Width: 1920, Height: 1080, FPS: 25}
	mid := onvif.Profile{Token: "mid", Encoding: "H264", Width: 1280, Height: 720, FPS: 25}
	low := onvif.Profile{Token: "low", Encoding: "H264", Width: 640, Height: 360, FPS: 15}
	jpegLow := onvif.Profile{Token: "jpeg", Encoding: "JPEG", Width: 640, Height: 360, FPS: 25}
	audio := onvif.Profile{Token: "audio"}
	for _, tt := range []struct {
		name     string
		profiles []onvif.Profile
		want     string
	}{
		{"two: the smaller", []onvif.Profile{main, low}, "low"},
		{"three, in any order", []onvif.Profile{low, main, mid}, "low"},
		{"a JPEG of the same size loses to H.264", []onvif.Profile{main, jpegLow, low}, "low"},
		{"only the main and audio: none", []onvif.Profile{main, audio}, ""},
		{"none", nil, ""},
	} {
		got, ok := ChooseSub(tt.profiles)
		if ok != (tt.want != "") || (ok && got.Profile.Token != tt.want) {
			t.Errorf("%s: chose %q (ok %v), want %q", tt.name, got.Profile.Token, ok, tt.want)
		}
	}
}
