//go:build integration

package discovery

import (
	"context"
	"strconv"
	"testing"
)

// TestFindSubStream: subStream "auto" finds the camera's sub stream, the
// lowest-resolution ONVIF profile of the stand-in (both profiles offered,
// the real test camera behind them), whatever size the main records at;
// without ONVIF, the vendors' sub-stream paths (Hikvision's 102 here).
func TestFindSubStream(t *testing.T) {
	cam, _ := cameras(t)
	d := startDevice(t, cam, camPassword)
	tg := target(cam, camPassword)
	tg.ONVIFPort, tg.Sub = d.Port(), true // the main is configured at 640x360: the sub is still the smaller
	found, err := fastFinder().Find(context.Background(), tg, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := "rtsp://127.0.0.1:" + strconv.Itoa(cam.Port)
	if found.Source != `onvif profile "subStream"` || found.URI != base+"/Streaming/Channels/102" {
		t.Errorf("ONVIF: found %+v", found)
	}
	tg.Method = MethodPaths
	var a attempts
	found, err = fastFinder().Find(context.Background(), tg, a.report)
	if err != nil {
		t.Fatal(err)
	}
	if found.Source != "known path /Streaming/Channels/102" || found.URI != base+"/Streaming/Channels/102" {
		t.Errorf("paths: found %+v", found)
	}
	if p := a.paths(); len(p) != 1 || p[0] != "/Streaming/Channels/102" {
		t.Errorf("paths tried: %v (the sub paths first, not the main's)", p)
	}
}
