package onvif

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/cctvd/cctvd/internal/onvifsim"
)

// TestSetEncoder: the client reads a profile's encoder, checks the
// camera's options, and sends the whole configuration back changed; the
// strict stand-in takes it and GetProfiles shows the new setting. What the
// options rule out is not sent.
func TestSetEncoder(t *testing.T) {
	d := startSim(t, onvifsim.Config{Profiles: []onvifsim.Profile{
		{Token: "Profile_1", Name: "mainStream", Encoding: "H264", Width: 1920, Height: 1080, FPS: 25, URI: "rtsp://127.0.0.1:1/101",
			Modes: []onvifsim.Mode{{Width: 1920, Height: 1080, FPS: 25, URI: "rtsp://127.0.0.1:1/101"}, {Width: 1280, Height: 720, FPS: 25, URI: "rtsp://127.0.0.1:1/720"}}},
	}})
	c := newClient(d, simPassword)
	ctx := context.Background()
	profiles, err := c.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		w, h int
		fps  float64
		want string
	}{
		{640, 360, 5, "the camera offers 1920x1080, 1280x720, not 640x360"},
		{1280, 720, 30, "the camera offers 1 to 25 fps, not 30"},
		{1280, 720, 2.5, "whole frame rates"},
	} {
		if err := c.SetEncoder(ctx, profiles[0], tt.w, tt.h, tt.fps); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%dx%d at %v: %v, want %q", tt.w, tt.h, tt.fps, err, tt.want)
		}
	}
	if n := d.Calls("SetVideoEncoderConfiguration"); n != 0 {
		t.Fatalf("%d sets for settings the camera does not offer", n)
	}
	if err := c.SetEncoder(ctx, profiles[0], 1280, 720, 5); err != nil {
		t.Fatal(err)
	}
	after, err := c.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := after[0]; p.Width != 1280 || p.Height != 720 || p.FPS != 5 {
		t.Errorf("after the set: %+v", p)
	}
	uri, err := c.StreamURI(ctx, "Profile_1")
	if err != nil || uri != "rtsp://127.0.0.1:1/720" {
		t.Errorf("stream URI after the set: %q, %v", uri, err)
	}
}

// TestStandInSetEncoderIsStrict: a SetVideoEncoderConfiguration without an
// element the schema requires, or with another codec, is refused with
// ter:InvalidArgVal/ter:ConfigModify, and changes nothing.
func TestStandInSetEncoderIsStrict(t *testing.T) {
	d := startSim(t, onvifsim.Config{})
	c := newClient(d, simPassword)
	ctx := context.Background()
	media, err := c.MediaService(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type resolution struct {
		Width  int `xml:"http://www.onvif.org/ver10/schema Width"`
		Height int `xml:"http://www.onvif.org/ver10/schema Height"`
	}
	type conf struct {
		Token      string      `xml:"token,attr"`
		Name       string      `xml:"http://www.onvif.org/ver10/schema Name"`
		UseCount   int         `xml:"http://www.onvif.org/ver10/schema UseCount"`
		Encoding   string      `xml:"http://www.onvif.org/ver10/schema Encoding"`
		Resolution *resolution `xml:"http://www.onvif.org/ver10/schema Resolution,omitempty"`
		Quality    float64     `xml:"http://www.onvif.org/ver10/schema Quality"`
		Multicast  *struct {
			Address struct {
				Type string `xml:"http://www.onvif.org/ver10/schema Type"`
			} `xml:"http://www.onvif.org/ver10/schema Address"`
		} `xml:"http://www.onvif.org/ver10/schema Multicast,omitempty"`
		SessionTimeout string `xml:"http://www.onvif.org/ver10/schema SessionTimeout"`
	}
	type req struct {
		XMLName          xml.Name `xml:"http://www.onvif.org/ver10/media/wsdl SetVideoEncoderConfiguration"`
		Configuration    conf     `xml:"http://www.onvif.org/ver10/media/wsdl Configuration"`
		ForcePersistence *bool    `xml:"http://www.onvif.org/ver10/media/wsdl ForcePersistence,omitempty"`
	}
	yes := true
	whole := func() req {
		r := req{Configuration: conf{Token: "vec-Profile_1", Name: "vec", UseCount: 1, Encoding: "H264", Resolution: &resolution{1920, 1080},
			Quality: 5, SessionTimeout: "PT60S"}, ForcePersistence: &yes}
		r.Configuration.Multicast = &struct {
			Address struct {
				Type string `xml:"http://www.onvif.org/ver10/schema Type"`
			} `xml:"http://www.onvif.org/ver10/schema Address"`
		}{}
		r.Configuration.Multicast.Address.Type = "IPv4"
		return r
	}
	for _, tt := range []struct {
		name   string
		change func(*req)
	}{
		{"no ForcePersistence", func(r *req) { r.ForcePersistence = nil }},
		{"no Resolution", func(r *req) { r.Configuration.Resolution = nil }},
		{"no Multicast", func(r *req) { r.Configuration.Multicast = nil }},
		{"another codec", func(r *req) { r.Configuration.Encoding = "JPEG" }},
		{"a size not offered", func(r *req) { r.Configuration.Resolution = &resolution{1280, 720} }},
	} {
		r := whole()
		tt.change(&r)
		var resp struct{}
		err := c.call(ctx, media, NSMedia+"/SetVideoEncoderConfiguration", true, r, &resp)
		var f *Fault
		if !errors.As(err, &f) || !f.Has("ConfigModify") {
			t.Errorf("%s: %v, want a ConfigModify fault", tt.name, err)
		}
	}
	if n := d.Calls("SetVideoEncoderConfiguration"); n != 0 {
		t.Errorf("%d bad sets taken", n)
	}
}
