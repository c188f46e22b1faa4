package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cctvd/cctvd/internal/redact"
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

// RedactedURL is URL with its credentials masked: the password, query
// values named like credentials, an RTMP stream key and the camera's
// declared secrets.
func (cam Camera) RedactedURL() string {
	return redactURL(cam.URL(), cam.DeclaredSecrets)
}

// placeholder stands for a mask while a URL is escaped: url escapes '*'.
const placeholder = "CCTVDMASKEDSECRET"

// redactURL returns u with its credentials masked (see RedactedURL), and
// the declared secrets wherever they stand in it.
func redactURL(u *url.URL, declared []string) string {
	v := *u
	if v.User != nil {
		if _, has := v.User.Password(); has {
			v.User = url.UserPassword(v.User.Username(), placeholder)
		}
	}
	v.RawQuery = redactQuery(v.RawQuery, declared)
	if v.Scheme != "file" {
		segs := strings.Split(v.EscapedPath(), "/")
		for i, seg := range segs {
			plain, _ := url.PathUnescape(seg)
			if isStreamKey(v.Scheme, segs, i) || (seg != "" && slices.Contains(declared, plain)) {
				segs[i] = placeholder
			}
		}
		v.RawPath = strings.Join(segs, "/")
		v.Path, _ = url.PathUnescape(v.RawPath)
	}
	out := strings.ReplaceAll(v.String(), placeholder, Mask)
	for _, s := range declared {
		if len(s) >= MinMaskLen {
			for _, f := range []string{s, url.PathEscape(s), url.QueryEscape(s)} {
				out = strings.ReplaceAll(out, f, Mask)
			}
		}
	}
	return out
}

// MinMaskLen is the length from which a declared secret is masked as a
// substring of a URL, not only as a whole segment or value.
const MinMaskLen = 8

// isStreamKey reports whether segs[i], a segment of a URL's path, is an
// RTMP stream key: the last one after the application's.
func isStreamKey(scheme string, segs []string, i int) bool {
	if scheme != "rtmp" && scheme != "rtmps" {
		return false
	}
	var nonEmpty []int
	for j, s := range segs {
		if s != "" {
			nonEmpty = append(nonEmpty, j)
		}
	}
	return len(nonEmpty) >= 2 && i == nonEmpty[len(nonEmpty)-1]
}

// redactQuery masks the values of credential parameters and declared
// secrets in a raw query.
func redactQuery(raw string, declared []string) string {
	if raw == "" {
		return raw
	}
	params := strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' })
	for i, p := range params {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name, _ := url.QueryUnescape(k)
		plain, _ := url.QueryUnescape(val)
		if val != "" && (redact.IsCredentialParam(name) || slices.Contains(declared, plain)) {
			params[i] = k + "=" + placeholder
		}
	}
	return strings.Join(params, "&")
}

// queryCredentials returns the values of credential parameters in a raw
// query.
func queryCredentials(raw string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		k, val, ok := strings.Cut(p, "=")
		name, _ := url.QueryUnescape(k)
		plain, _ := url.QueryUnescape(val)
		if ok && plain != "" && redact.IsCredentialParam(name) {
			out = append(out, plain)
		}
	}
	return out
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

// Secrets returns the camera's secrets: its password, and in its stream URL
// (or rtspPath) the userinfo password, the values of credential query
// parameters and an RTMP stream key, plus the secrets it declares.
func (cam Camera) Secrets() []string {
	var s []string
	if cam.Password != "" {
		s = append(s, cam.Password)
	}
	if _, q, ok := strings.Cut(cam.RTSPPath, "?"); ok {
		s = append(s, queryCredentials(q)...)
	}
	s = append(s, cam.subSecrets()...)
	if u, err := url.Parse(cam.StreamURL); err == nil && cam.StreamURL != "" {
		if u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				s = append(s, p)
			}
		}
		s = append(s, queryCredentials(u.RawQuery)...)
		segs := strings.Split(u.EscapedPath(), "/")
		for i, seg := range segs {
			if isStreamKey(u.Scheme, segs, i) {
				if plain, err := url.PathUnescape(seg); err == nil {
					s = append(s, plain)
				}
			}
		}
	}
	return append(s, cam.DeclaredSecrets...)
}

// Secrets returns every secret in the config: camera passwords and stream
// URL credentials, the AWS secret key, the API token, the alerts' webhook
// URLs and secrets and broker password, and the declared secrets. They
// must never reach a log line, an API response or an error message.
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
	s = append(s, c.Alerts.secrets()...)
	return append(s, c.DeclaredSecrets...)
}

// ShortSecretFields names the configured secrets shorter than
// redact.MinSubstringLen, which are masked only where they stand as
// credentials (URLs, the config dump), not in free text.
func (c *Config) ShortSecretFields() []string {
	var out []string
	short := func(path, s string) {
		if s != "" && redact.IsShort(s) {
			out = append(out, path)
		}
	}
	for i, cam := range c.Cameras {
		p := fmt.Sprintf("cameras[%d]", i)
		short(p+".password", cam.Password)
		for _, s := range cam.Secrets() {
			if s != cam.Password && !slices.Contains(cam.DeclaredSecrets, s) {
				short(p+".streamUrl", s)
			}
		}
		for j, s := range cam.DeclaredSecrets {
			short(fmt.Sprintf("%s.secrets[%d]", p, j), s)
		}
	}
	if c.AWSCredentials != nil {
		short("awsCredentials.secretAccessKey", c.AWSCredentials.SecretAccessKey)
	}
	short("api.token", c.API.Token)
	c.Alerts.shortSecrets(short)
	for j, s := range c.DeclaredSecrets {
		short(fmt.Sprintf("secrets[%d]", j), s)
	}
	return out
}

// Masked returns a deep copy of c with every secret replaced by Mask.
func (c *Config) Masked() *Config {
	m := *c
	m.Cameras = make([]Camera, len(c.Cameras))
	for i, cam := range c.Cameras {
		declared := append(slices.Clone(cam.DeclaredSecrets), c.DeclaredSecrets...)
		if cam.Password != "" {
			cam.Password = Mask
		}
		if u, err := url.Parse(cam.RTSPPath); err == nil && cam.RTSPPath != "" {
			cam.RTSPPath = redactURL(u, declared)
		}
		if u, err := url.Parse(cam.StreamURL); err == nil && cam.StreamURL != "" {
			cam.StreamURL = redactURL(u, declared)
		}
		if ss := cam.SubStream; ss != nil {
			sm := *ss
			if u, err := url.Parse(sm.RTSPPath); err == nil && sm.RTSPPath != "" {
				sm.RTSPPath = redactURL(u, declared)
			}
			cam.SubStream = &sm
		}
		cam.DeclaredSecrets = masks(cam.DeclaredSecrets)
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
	m.Alerts = c.Alerts.masked()
	m.DeclaredSecrets = masks(c.DeclaredSecrets)
	return &m
}

func masks(secrets []string) []string {
	if secrets == nil {
		return nil
	}
	out := make([]string, len(secrets))
	for i := range out {
		out[i] = Mask
	}
	return out
}

// MaskedJSON is Masked as indented JSON, for `cctvd check-config`.
func (c *Config) MaskedJSON() ([]byte, error) {
	return json.MarshalIndent(c.Masked(), "", "  ")
}
