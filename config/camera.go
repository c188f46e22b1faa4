package config

import (
	"encoding/json"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Mask replaces every secret in output meant for people.
const Mask = "***"

// URL returns the camera's stream URL with its credentials percent-encoded,
// so that passwords holding '@', ':', '/', '#' or '%' survive. It holds the
// password: never log it; use RedactedURL.
func (cam Camera) URL() *url.URL {
	if cam.StreamURL != "" {
		u, err := url.Parse(cam.StreamURL)
		if err != nil { // Validate rejects this; keep URL total anyway.
			return &url.URL{Scheme: "invalid"}
		}
		if u.User == nil && u.Scheme != "file" {
			u.User = cam.userinfo()
		}
		return u
	}
	path, query, _ := strings.Cut(cam.RTSPPath, "?")
	if path == "" {
		path = DefaultRTSPPath
	}
	return &url.URL{
		Scheme:   "rtsp",
		User:     cam.userinfo(),
		Host:     net.JoinHostPort(cam.IPAddress, strconv.Itoa(cam.RTSPPort)),
		Path:     path,
		RawQuery: query,
	}
}

// RedactedURL is URL with the password masked.
func (cam Camera) RedactedURL() string {
	u := cam.URL()
	if _, has := u.User.Password(); has {
		// url escapes '*'; put the mask in after.
		u.User = url.UserPassword(u.User.Username(), "MASKED")
		return strings.Replace(u.String(), ":MASKED@", ":"+Mask+"@", 1)
	}
	return u.String()
}

func (cam Camera) userinfo() *url.Userinfo {
	switch {
	case cam.UserName == "" && cam.Password == "":
		return nil
	case cam.Password == "":
		return url.User(cam.UserName)
	}
	return url.UserPassword(cam.UserName, cam.Password)
}

// Size returns the configured width and height (0, 0 if invalid).
func (cam Camera) Size() (w, h int) {
	m := resolutionRe.FindStringSubmatch(cam.Resolution)
	if m == nil {
		return 0, 0
	}
	w, _ = strconv.Atoi(m[1])
	h, _ = strconv.Atoi(m[2])
	return w, h
}

// SegmentDuration is videoDuration as a time.Duration.
func (cam Camera) SegmentDuration() time.Duration {
	return time.Duration(cam.VideoDuration * float64(time.Second))
}

// Secrets returns the camera's secrets: its password and any password in
// its stream URL.
func (cam Camera) Secrets() []string {
	var s []string
	if cam.Password != "" {
		s = append(s, cam.Password)
	}
	if u, err := url.Parse(cam.StreamURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			s = append(s, p)
		}
	}
	return s
}

// Secrets returns every secret in the config: camera passwords, the AWS
// secret key and the API token. They must never reach a log line, an API
// response or an error message.
func (c *Config) Secrets() []string {
	var s []string
	for _, cam := range c.Cameras {
		s = append(s, cam.Secrets()...)
	}
	if c.AWSCredentials != nil && c.AWSCredentials.SecretAccessKey != "" {
		s = append(s, c.AWSCredentials.SecretAccessKey)
	}
	if c.API.Token != "" {
		s = append(s, c.API.Token)
	}
	return s
}

// Masked returns a deep copy of c with every secret replaced by Mask.
func (c *Config) Masked() *Config {
	m := *c
	m.Cameras = make([]Camera, len(c.Cameras))
	for i, cam := range c.Cameras {
		if cam.Password != "" {
			cam.Password = Mask
		}
		if u, err := url.Parse(cam.StreamURL); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), Mask)
				cam.StreamURL = u.String()
			}
		}
		m.Cameras[i] = cam
	}
	if c.AWSCredentials != nil {
		a := *c.AWSCredentials
		if a.SecretAccessKey != "" {
			a.SecretAccessKey = Mask
		}
		m.AWSCredentials = &a
	}
	if m.API.Token != "" {
		m.API.Token = Mask
	}
	return &m
}

// MaskedJSON is Masked as indented JSON, for `cctvd check-config`.
func (c *Config) MaskedJSON() ([]byte, error) {
	return json.MarshalIndent(c.Masked(), "", "  ")
}
