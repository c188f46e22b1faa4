package onvif

import (
	"context"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// EncoderConfig is a video encoder configuration (tt:VideoEncoderConfiguration
// of media ver10), every element the schema requires, as the camera gives
// it in GetProfiles and takes back in SetVideoEncoderConfiguration.
type EncoderConfig struct {
	Token      string `xml:"token,attr"`
	Name       string `xml:"Name"`
	UseCount   int    `xml:"UseCount"`
	Encoding   string `xml:"Encoding"`
	Resolution struct {
		Width  int `xml:"Width"`
		Height int `xml:"Height"`
	} `xml:"Resolution"`
	Quality     float64 `xml:"Quality"`
	RateControl *struct {
		FrameRateLimit   int `xml:"FrameRateLimit"`
		EncodingInterval int `xml:"EncodingInterval"`
		BitrateLimit     int `xml:"BitrateLimit"`
	} `xml:"RateControl"`
	H264 *struct {
		GovLength   int    `xml:"GovLength"`
		H264Profile string `xml:"H264Profile"`
	} `xml:"H264"`
	Multicast *struct {
		Address struct {
			Type        string `xml:"Type"`
			IPv4Address string `xml:"IPv4Address,omitempty"`
			IPv6Address string `xml:"IPv6Address,omitempty"`
		} `xml:"Address"`
		Port      int  `xml:"Port"`
		TTL       int  `xml:"TTL"`
		AutoStart bool `xml:"AutoStart"`
	} `xml:"Multicast"`
	SessionTimeout string `xml:"SessionTimeout"`
}

// encoderConfigOut is EncoderConfig as a request writes it: the schema's
// namespace on every element (encoding/xml reads elements of any namespace
// into EncoderConfig, and writes them in none).
type encoderConfigOut struct {
	Token      string `xml:"token,attr"`
	Name       string `xml:"http://www.onvif.org/ver10/schema Name"`
	UseCount   int    `xml:"http://www.onvif.org/ver10/schema UseCount"`
	Encoding   string `xml:"http://www.onvif.org/ver10/schema Encoding"`
	Resolution struct {
		Width  int `xml:"http://www.onvif.org/ver10/schema Width"`
		Height int `xml:"http://www.onvif.org/ver10/schema Height"`
	} `xml:"http://www.onvif.org/ver10/schema Resolution"`
	Quality     float64 `xml:"http://www.onvif.org/ver10/schema Quality"`
	RateControl *struct {
		FrameRateLimit   int `xml:"http://www.onvif.org/ver10/schema FrameRateLimit"`
		EncodingInterval int `xml:"http://www.onvif.org/ver10/schema EncodingInterval"`
		BitrateLimit     int `xml:"http://www.onvif.org/ver10/schema BitrateLimit"`
	} `xml:"http://www.onvif.org/ver10/schema RateControl,omitempty"`
	H264 *struct {
		GovLength   int    `xml:"http://www.onvif.org/ver10/schema GovLength"`
		H264Profile string `xml:"http://www.onvif.org/ver10/schema H264Profile"`
	} `xml:"http://www.onvif.org/ver10/schema H264,omitempty"`
	Multicast struct {
		Address struct {
			Type        string `xml:"http://www.onvif.org/ver10/schema Type"`
			IPv4Address string `xml:"http://www.onvif.org/ver10/schema IPv4Address,omitempty"`
			IPv6Address string `xml:"http://www.onvif.org/ver10/schema IPv6Address,omitempty"`
		} `xml:"http://www.onvif.org/ver10/schema Address"`
		Port      int  `xml:"http://www.onvif.org/ver10/schema Port"`
		TTL       int  `xml:"http://www.onvif.org/ver10/schema TTL"`
		AutoStart bool `xml:"http://www.onvif.org/ver10/schema AutoStart"`
	} `xml:"http://www.onvif.org/ver10/schema Multicast"`
	SessionTimeout string `xml:"http://www.onvif.org/ver10/schema SessionTimeout"`
}

// EncoderOptions is what a video encoder configuration may be set to, as
// far as H.264 goes (GetVideoEncoderConfigurationOptions).
type EncoderOptions struct {
	Resolutions    [][2]int
	MinFPS, MaxFPS int
	MinGOV, MaxGOV int
}

// EncoderOptions asks what a profile's video encoder can be set to.
func (c *Client) EncoderOptions(ctx context.Context, p Profile) (EncoderOptions, error) {
	media, err := c.MediaService(ctx)
	if err != nil {
		return EncoderOptions{}, err
	}
	if p.Encoder == nil {
		return EncoderOptions{}, fmt.Errorf("profile %q has no video encoder", p.Name)
	}
	req := struct {
		XMLName            xml.Name `xml:"http://www.onvif.org/ver10/media/wsdl GetVideoEncoderConfigurationOptions"`
		ConfigurationToken string   `xml:"http://www.onvif.org/ver10/media/wsdl ConfigurationToken"`
		ProfileToken       string   `xml:"http://www.onvif.org/ver10/media/wsdl ProfileToken"`
	}{ConfigurationToken: p.Encoder.Token, ProfileToken: p.Token}
	type rng struct {
		Min int `xml:"Min"`
		Max int `xml:"Max"`
	}
	var resp struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/media/wsdl GetVideoEncoderConfigurationOptionsResponse"`
		Options struct {
			H264 *struct {
				Resolutions []struct {
					Width  int `xml:"Width"`
					Height int `xml:"Height"`
				} `xml:"ResolutionsAvailable"`
				GovLengthRange rng `xml:"GovLengthRange"`
				FrameRateRange rng `xml:"FrameRateRange"`
			} `xml:"H264"`
		} `xml:"Options"`
	}
	if err := c.call(ctx, media, NSMedia+"/GetVideoEncoderConfigurationOptions", true, req, &resp); err != nil {
		return EncoderOptions{}, c.mediaError(err)
	}
	h := resp.Options.H264
	if h == nil {
		return EncoderOptions{}, fmt.Errorf("profile %q: the camera offers no H.264 settings", p.Name)
	}
	o := EncoderOptions{MinFPS: h.FrameRateRange.Min, MaxFPS: h.FrameRateRange.Max, MinGOV: h.GovLengthRange.Min, MaxGOV: h.GovLengthRange.Max}
	for _, r := range h.Resolutions {
		o.Resolutions = append(o.Resolutions, [2]int{r.Width, r.Height})
	}
	return o, nil
}

// SetEncoder asks the camera to encode profile p's video as H.264 at w×h
// and fps (a whole number: ONVIF's frame rate limit is an integer), a
// keyframe every 2 s, kept across its reboots (SetVideoEncoderConfiguration
// with ForcePersistence). It checks the camera's options first and says
// what it offers when it cannot.
func (c *Client) SetEncoder(ctx context.Context, p Profile, w, h int, fps float64) error {
	if fps != math.Trunc(fps) || fps < 1 {
		return fmt.Errorf("ONVIF asks for whole frame rates, not %v fps", fps)
	}
	opts, err := c.EncoderOptions(ctx, p)
	if err != nil {
		return err
	}
	found := false
	var offered []string
	for _, r := range opts.Resolutions {
		offered = append(offered, fmt.Sprintf("%dx%d", r[0], r[1]))
		found = found || (r[0] == w && r[1] == h)
	}
	if !found {
		return fmt.Errorf("profile %q: the camera offers %s, not %dx%d", p.Name, strings.Join(offered, ", "), w, h)
	}
	if int(fps) < opts.MinFPS || int(fps) > opts.MaxFPS {
		return fmt.Errorf("profile %q: the camera offers %d to %d fps, not %v", p.Name, opts.MinFPS, opts.MaxFPS, fps)
	}
	media, err := c.MediaService(ctx)
	if err != nil {
		return err
	}
	v := *p.Encoder
	out := encoderConfigOut{Token: v.Token, Name: v.Name, UseCount: v.UseCount, Encoding: "H264", Quality: v.Quality, SessionTimeout: v.SessionTimeout}
	out.Resolution.Width, out.Resolution.Height = w, h
	out.RateControl = &struct {
		FrameRateLimit   int `xml:"http://www.onvif.org/ver10/schema FrameRateLimit"`
		EncodingInterval int `xml:"http://www.onvif.org/ver10/schema EncodingInterval"`
		BitrateLimit     int `xml:"http://www.onvif.org/ver10/schema BitrateLimit"`
	}{FrameRateLimit: int(fps), EncodingInterval: 1}
	if v.RateControl != nil {
		out.RateControl.BitrateLimit = v.RateControl.BitrateLimit
	}
	gov := min(max(int(2*fps), opts.MinGOV), max(opts.MaxGOV, opts.MinGOV))
	profile := "Main"
	if v.H264 != nil && v.H264.H264Profile != "" {
		profile = v.H264.H264Profile
	}
	out.H264 = &struct {
		GovLength   int    `xml:"http://www.onvif.org/ver10/schema GovLength"`
		H264Profile string `xml:"http://www.onvif.org/ver10/schema H264Profile"`
	}{gov, profile}
	if m := v.Multicast; m != nil {
		out.Multicast.Address.Type, out.Multicast.Address.IPv4Address, out.Multicast.Address.IPv6Address = m.Address.Type, m.Address.IPv4Address, m.Address.IPv6Address
		out.Multicast.Port, out.Multicast.TTL, out.Multicast.AutoStart = m.Port, m.TTL, m.AutoStart
	} else {
		out.Multicast.Address.Type, out.Multicast.Address.IPv4Address, out.Multicast.TTL = "IPv4", "0.0.0.0", 1
	}
	if out.SessionTimeout == "" {
		out.SessionTimeout = "PT60S"
	}
	req := struct {
		XMLName          xml.Name         `xml:"http://www.onvif.org/ver10/media/wsdl SetVideoEncoderConfiguration"`
		Configuration    encoderConfigOut `xml:"http://www.onvif.org/ver10/media/wsdl Configuration"`
		ForcePersistence bool             `xml:"http://www.onvif.org/ver10/media/wsdl ForcePersistence"`
	}{Configuration: out, ForcePersistence: true}
	var resp struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/media/wsdl SetVideoEncoderConfigurationResponse"`
	}
	if err := c.call(ctx, media, NSMedia+"/SetVideoEncoderConfiguration", true, req, &resp); err != nil {
		return c.mediaError(err)
	}
	return nil
}
