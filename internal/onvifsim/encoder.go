package onvifsim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
)

// Mode is a setting a profile's video encoder can be switched to with
// SetVideoEncoderConfiguration, and the stream URI that then serves it (a
// test camera's mount at that size and rate).
type Mode struct {
	Width, Height, FPS int
	URI                string
}

// The media service's encoder configuration calls, as the media ver10 WSDL
// and schema write them.
func init() {
	operations[MediaPath][xml.Name{Space: nsTRT, Local: "GetVideoEncoderConfigurationOptions"}] = true
	operations[MediaPath][xml.Name{Space: nsTRT, Local: "SetVideoEncoderConfiguration"}] = true
}

// modes is what p's encoder offers: its Modes, or its current setting alone.
func (p Profile) modes() []Mode {
	if len(p.Modes) > 0 {
		return p.Modes
	}
	return []Mode{{p.Width, p.Height, p.FPS, p.URI}}
}

func (p Profile) encoderToken() string { return "vec-" + p.Token }

// answerEncoder answers the encoder configuration calls (ok false: another
// operation).
func (d *Device) answerEncoder(op string, body []byte) (resp string, ok bool, err error) {
	switch op {
	case "GetVideoEncoderConfigurationOptions":
		var req struct {
			Body struct {
				Op struct {
					ConfigurationToken string `xml:"http://www.onvif.org/ver10/media/wsdl ConfigurationToken"`
					ProfileToken       string `xml:"http://www.onvif.org/ver10/media/wsdl ProfileToken"`
				} `xml:"http://www.onvif.org/ver10/media/wsdl GetVideoEncoderConfigurationOptions"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
		}
		if err := xml.Unmarshal(body, &req); err != nil {
			return "", true, &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgs"}, "cannot read the request"}
		}
		p, found := d.profileBy(func(p Profile) bool {
			return (req.Body.Op.ConfigurationToken == "" || p.encoderToken() == req.Body.Op.ConfigurationToken) &&
				(req.Body.Op.ProfileToken == "" || p.Token == req.Body.Op.ProfileToken)
		})
		if !found || (req.Body.Op.ConfigurationToken == "" && req.Body.Op.ProfileToken == "") {
			return "", true, &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgVal", "NoConfig"}, "no such configuration or profile"}
		}
		var b strings.Builder
		b.WriteString(`<trt:GetVideoEncoderConfigurationOptionsResponse><trt:Options><tt:QualityRange><tt:Min>1</tt:Min><tt:Max>10</tt:Max></tt:QualityRange><tt:H264>`)
		maxFPS := 1
		for _, m := range p.modes() {
			fmt.Fprintf(&b, `<tt:ResolutionsAvailable><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:ResolutionsAvailable>`, m.Width, m.Height)
			maxFPS = max(maxFPS, m.FPS)
		}
		fmt.Fprintf(&b, `<tt:GovLengthRange><tt:Min>1</tt:Min><tt:Max>400</tt:Max></tt:GovLengthRange><tt:FrameRateRange><tt:Min>1</tt:Min><tt:Max>%d</tt:Max></tt:FrameRateRange>`+
			`<tt:EncodingIntervalRange><tt:Min>1</tt:Min><tt:Max>1</tt:Max></tt:EncodingIntervalRange><tt:H264ProfilesSupported>Main</tt:H264ProfilesSupported></tt:H264>`+
			`</trt:Options></trt:GetVideoEncoderConfigurationOptionsResponse>`, maxFPS)
		return b.String(), true, nil
	case "SetVideoEncoderConfiguration":
		if err := d.setEncoder(body); err != nil {
			return "", true, err
		}
		return `<trt:SetVideoEncoderConfigurationResponse/>`, true, nil
	}
	return "", false, nil
}

// setEncoder carries out a SetVideoEncoderConfiguration strictly: every
// element the schema requires is there (token, Name, UseCount, Encoding,
// Resolution, Quality, Multicast, SessionTimeout; ForcePersistence), the
// encoding is the profile's (this device does not change codecs), and the
// resolution and frame rate limit are a mode the encoder offers.
func (d *Device) setEncoder(body []byte) error {
	type req struct {
		Body struct {
			Op *struct {
				Configuration *struct {
					Token      string  `xml:"token,attr"`
					Name       *string `xml:"http://www.onvif.org/ver10/schema Name"`
					UseCount   *int    `xml:"http://www.onvif.org/ver10/schema UseCount"`
					Encoding   *string `xml:"http://www.onvif.org/ver10/schema Encoding"`
					Resolution *struct {
						Width  int `xml:"http://www.onvif.org/ver10/schema Width"`
						Height int `xml:"http://www.onvif.org/ver10/schema Height"`
					} `xml:"http://www.onvif.org/ver10/schema Resolution"`
					Quality     *float64 `xml:"http://www.onvif.org/ver10/schema Quality"`
					RateControl *struct {
						FrameRateLimit   int `xml:"http://www.onvif.org/ver10/schema FrameRateLimit"`
						EncodingInterval int `xml:"http://www.onvif.org/ver10/schema EncodingInterval"`
						BitrateLimit     int `xml:"http://www.onvif.org/ver10/schema BitrateLimit"`
					} `xml:"http://www.onvif.org/ver10/schema RateControl"`
					Multicast *struct {
						Address *struct {
							Type string `xml:"http://www.onvif.org/ver10/schema Type"`
						} `xml:"http://www.onvif.org/ver10/schema Address"`
					} `xml:"http://www.onvif.org/ver10/schema Multicast"`
					SessionTimeout *string `xml:"http://www.onvif.org/ver10/schema SessionTimeout"`
				} `xml:"http://www.onvif.org/ver10/media/wsdl Configuration"`
				ForcePersistence *bool `xml:"http://www.onvif.org/ver10/media/wsdl ForcePersistence"`
			} `xml:"http://www.onvif.org/ver10/media/wsdl SetVideoEncoderConfiguration"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
	}
	invalid := func(sub, why string) error {
		return &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgVal", sub}, why}
	}
	var r req
	if err := xml.NewDecoder(bytes.NewReader(body)).Decode(&r); err != nil || r.Body.Op == nil {
		return &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgs"}, "cannot read the request"}
	}
	c := r.Body.Op.Configuration
	switch {
	case c == nil:
		return invalid("NoConfig", "Configuration is required")
	case r.Body.Op.ForcePersistence == nil:
		return invalid("ConfigModify", "ForcePersistence is required")
	case c.Token == "" || c.Name == nil || c.UseCount == nil || c.Encoding == nil || c.Resolution == nil || c.Quality == nil ||
		c.Multicast == nil || c.Multicast.Address == nil || c.SessionTimeout == nil:
		return invalid("ConfigModify", "a VideoEncoderConfiguration needs its token, Name, UseCount, Encoding, Resolution, Quality, Multicast and SessionTimeout")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, p := range d.cfg.Profiles {
		if p.encoderToken() != c.Token {
			continue
		}
		if !strings.EqualFold(*c.Encoding, p.Encoding) {
			return invalid("ConfigModify", fmt.Sprintf("this encoder encodes %s, not %s", p.Encoding, *c.Encoding))
		}
		fps := p.FPS
		if c.RateControl != nil {
			fps = c.RateControl.FrameRateLimit
		}
		for _, m := range p.modes() {
			if m.Width == c.Resolution.Width && m.Height == c.Resolution.Height && fps >= 1 && fps <= m.FPS {
				p.Width, p.Height, p.FPS, p.URI = m.Width, m.Height, fps, m.URI
				d.cfg.Profiles[i] = p
				d.calls["SetVideoEncoderConfiguration:"+p.Token]++
				return nil
			}
		}
		return invalid("ConfigModify", fmt.Sprintf("the encoder offers no %dx%d at %d fps", c.Resolution.Width, c.Resolution.Height, fps))
	}
	return invalid("NoConfig", "no video encoder configuration with this token")
}

// profileBy returns the first profile for which match holds.
func (d *Device) profileBy(match func(Profile) bool) (Profile, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.cfg.Profiles {
		if match(p) {
			return p, true
		}
	}
	return Profile{}, false
}

// profiles is a copy of the profiles as they are now.
func (d *Device) profiles() []Profile {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Profile(nil), d.cfg.Profiles...)
}
