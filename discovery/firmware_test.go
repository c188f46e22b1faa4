//go:build integration

package discovery

import (
	"context"
	"strconv"
	"testing"

	"github.com/cctvd/cctvd/internal/onvifsim"
)

// Firmware that is not ONVIF as written still onboards: GetServices
// answered with a SOAP 1.1 fault (or HTML, an empty body...) falls back
// to GetCapabilities, and a media address without a port, the camera's
// own behind a port forward, is reached at the ONVIF port configured; the
// stream is the real test camera's.
func TestFindThroughOlderFirmware(t *testing.T) {
	cam, _ := cameras(t)
	base := "rtsp://127.0.0.1:" + strconv.Itoa(cam.Port)
	for _, a := range onvifsim.Answers {
		t.Run(string(a), func(t *testing.T) {
			d, err := onvifsim.Start(onvifsim.Config{User: camUser, Password: camPassword, Clock: wrongClock,
				GetServices: a, SOAP11Faults: a == onvifsim.SOAP11Fault, MediaXAddr: "http://192.0.2.10/onvif/media_service",
				Profiles: []onvifsim.Profile{{Token: "Profile_101", Name: "mainStream", Encoding: "H264", Width: 640, Height: 360, FPS: 5,
					URI: "rtsp://192.0.2.10:" + strconv.Itoa(cam.Port) + "/Streaming/Channels/101"}}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(d.Close)
			tg := target(cam, camPassword)
			tg.ONVIFPort, tg.Method = d.Port(), MethodONVIF
			found, err := fastFinder().Find(context.Background(), tg, nil)
			if err != nil || found.Source != `onvif profile "mainStream"` || found.URI != base+"/Streaming/Channels/101" {
				t.Fatalf("found %+v, err %v", found, err)
			}
			if d.Calls("GetCapabilities") != 1 || len(d.Rejections()) != 0 {
				t.Errorf("GetCapabilities answered %d times, rejections %q", d.Calls("GetCapabilities"), d.Rejections())
			}
		})
	}
}
