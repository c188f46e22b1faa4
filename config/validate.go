package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	cameraNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)
	feedIDRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	resolutionRe = regexp.MustCompile(`^([0-9]+)x([0-9]+)$`)
	bucketRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	hostnameRe   = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
)

// Limits checked by Validate.
const (
	MaxCameraNameLen = 64
	MaxFrameRate     = 120
	MaxVideoDuration = 86400
	MinSide, MaxSide = 16, 8192
)

var (
	streamSchemes = []string{"rtsp", "rtsps", "http", "https", "rtmp", "file"}
	x264Presets   = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"auto", "json", "console"}
)

// Validate reports every problem in c, each with its field path. It returns
// nil or a *ValidationError.
func (c *Config) Validate() error {
	var v validator
	if len(c.Cameras) == 0 {
		v.add("cameras", "at least one camera is required")
	}
	seen := map[string]int{}
	for i, cam := range c.Cameras {
		p := fmt.Sprintf("cameras[%d]", i)
		cam.validate(&v, p)
		cam.validateAgainstStall(&v, p, c.FFmpeg.StallTimeout.Std())
		if cam.CameraName != "" {
			key := strings.ToLower(cam.CameraName)
			if j, dup := seen[key]; dup {
				v.add(p+".cameraName", "%q is already used by cameras[%d]", cam.CameraName, j)
			} else {
				seen[key] = i
			}
		}
	}
	c.S3Config.validate(&v)
	if a := c.AWSCredentials; a != nil {
		switch {
		case a.AccessKeyID == "" && a.SecretAccessKey != "":
			v.add("awsCredentials.accessKeyId", "is required when secretAccessKey is set")
		case a.AccessKeyID != "" && a.SecretAccessKey == "":
			v.add("awsCredentials.secretAccessKey", "is required when accessKeyId is set")
		}
		if a.Region == "" {
			v.add("awsCredentials.region", "is required (or set s3Config.endpoint, which defaults it to %s)", DefaultRegion)
		}
	}
	c.StorageConfig.validate(&v)
	c.API.validate(&v)
	c.API.validateExport(&v)
	c.API.validateLive(&v)
	c.FFmpeg.validate(&v)
	if !slices.Contains(logLevels, c.Log.Level) {
		v.add("log.level", "%q is not one of %s", c.Log.Level, strings.Join(logLevels, ", "))
	}
	if !slices.Contains(logFormats, c.Log.Format) {
		v.add("log.format", "%q is not one of %s", c.Log.Format, strings.Join(logFormats, ", "))
	}
	c.Alerts.validate(&v)
	validateSecrets(&v, "secrets", c.DeclaredSecrets)
	return v.err()
}

func validateSecrets(v *validator, p string, secrets []string) {
	for i, s := range secrets {
		if s == "" {
			v.add(fmt.Sprintf("%s[%d]", p, i), "must not be empty")
		}
	}
}

func (cam Camera) validate(v *validator, p string) {
	if cam.ConfigureCamera {
		switch {
		case cam.StreamURL != "" || cam.RTSPPath != "" || (cam.Discovery != "" && cam.Discovery != DiscoveryAuto && cam.Discovery != DiscoveryONVIF):
			v.add(p+".configureCamera", "needs ONVIF discovery: no rtspPath or streamUrl, discovery auto or onvif")
		case cam.FrameRate != math.Trunc(cam.FrameRate):
			v.add(p+".configureCamera", "ONVIF asks a camera for whole frame rates, not %s fps", strconv.FormatFloat(cam.FrameRate, 'f', -1, 64))
		}
	}
	switch {
	case cam.CameraName == "":
		v.add(p+".cameraName", "is required")
	case len(cam.CameraName) > MaxCameraNameLen:
		v.add(p+".cameraName", "%q is longer than %d characters", cam.CameraName, MaxCameraNameLen)
	case !cameraNameRe.MatchString(cam.CameraName):
		v.add(p+".cameraName", "%q may hold only letters, digits, '.' and '-', starting with a letter or digit (it goes into file names)", cam.CameraName)
	}
	if cam.StreamURL == "" {
		switch {
		case cam.IPAddress == "":
			v.add(p+".ipAddress", "is required (or set streamUrl)")
		case strings.ContainsAny(cam.IPAddress, "@/"):
			// Not quoted: what precedes '@' may be a password.
			v.add(p+".ipAddress", "holds a user, password or path: it is the camera's address alone; put them in userName, password and rtspPath")
		case !validHost(cam.IPAddress):
			if _, _, err := net.SplitHostPort(cam.IPAddress); err == nil {
				v.add(p+".ipAddress", "%q holds a port: put the port in rtspPort", cam.IPAddress)
			} else {
				v.add(p+".ipAddress", "%q is not an IP address or host name", cam.IPAddress)
			}
		}
		if u, err := url.Parse(cam.RTSPPath); err != nil || u.Scheme != "" || u.Host != "" || u.Fragment != "" {
			shown, _, hasQuery := strings.Cut(cam.RTSPPath, "?")
			if hasQuery {
				shown += "?..." // a query may carry a password: not shown
			}
			v.add(p+".rtspPath", "%q is not a URL path such as /Streaming/Channels/101", shown)
		}
	} else {
		u, err := url.Parse(cam.StreamURL)
		switch {
		case err != nil:
			v.add(p+".streamUrl", "is not a URL")
		case !slices.Contains(streamSchemes, u.Scheme):
			v.add(p+".streamUrl", "scheme %q is not one of %s", u.Scheme, strings.Join(streamSchemes, ", "))
		case u.Scheme != "file" && u.Host == "":
			v.add(p+".streamUrl", "has no host")
		case u.Scheme == "file" && u.Path == "":
			v.add(p+".streamUrl", "has no file path")
		}
	}
	if cam.RTSPPort < 1 || cam.RTSPPort > 65535 {
		v.add(p+".rtspPort", "%d is not a port number (1 to 65535)", cam.RTSPPort)
	}
	if cam.ONVIFPort < 1 || cam.ONVIFPort > 65535 {
		v.add(p+".onvifPort", "%d is not a port number (1 to 65535)", cam.ONVIFPort)
	}
	if !slices.Contains([]string{DiscoveryAuto, DiscoveryONVIF, DiscoveryPaths, DiscoveryOff}, cam.Discovery) {
		v.add(p+".discovery", "%q is not auto, onvif, paths or off", cam.Discovery)
	}
	if !slices.Contains([]string{ModeAuto, ModeTranscode, ModeCopy}, cam.Mode) {
		v.add(p+".mode", "%q is not auto, transcode or copy", cam.Mode)
	}
	if !slices.Contains([]string{"", "vaapi", "qsv", "nvenc"}, cam.HWAccel) {
		v.add(p+".hwaccel", "%q is not vaapi, qsv or nvenc", cam.HWAccel)
	}
	if cam.HWAccelDevice != "" && !filepath.IsAbs(cam.HWAccelDevice) {
		v.add(p+".hwaccelDevice", "%q is not an absolute path such as /dev/dri/renderD128", cam.HWAccelDevice)
	}
	if cam.MaxFailedLogins < 1 || cam.MaxFailedLogins > MaxFailedLoginsLimit {
		v.add(p+".maxFailedLogins", "%d is out of range (1 to %d)", cam.MaxFailedLogins, MaxFailedLoginsLimit)
	}
	if w := cam.FailedLoginWindow.Std(); w < MinFailedLoginWindow || w > MaxFailedLoginWindow {
		v.add(p+".failedLoginWindow", "%v is out of range (1m to 24h)", w)
	}
	if cam.RTSPTransport != "tcp" && cam.RTSPTransport != "udp" {
		v.add(p+".rtspTransport", "%q is not tcp or udp", cam.RTSPTransport)
	}
	switch {
	case cam.FrameRate <= 0:
		v.add(p+".frameRate", "must be greater than 0 (got %s)", num(cam.FrameRate))
	case cam.FrameRate > MaxFrameRate:
		v.add(p+".frameRate", "must be at most %d (got %s)", MaxFrameRate, num(cam.FrameRate))
	}
	if m := resolutionRe.FindStringSubmatch(cam.Resolution); m == nil {
		v.add(p+".resolution", "%q is not WIDTHxHEIGHT", cam.Resolution)
	} else {
		w, errW := strconv.Atoi(m[1])
		h, errH := strconv.Atoi(m[2])
		switch {
		case errW != nil || errH != nil || w < MinSide || h < MinSide || w > MaxSide || h > MaxSide:
			v.add(p+".resolution", "%q is out of range (%d to %d per side)", cam.Resolution, MinSide, MaxSide)
		case w%2 != 0 || h%2 != 0:
			v.add(p+".resolution", "%q must have an even width and height", cam.Resolution)
		}
	}
	switch {
	case cam.VideoDuration <= 0:
		v.add(p+".videoDuration", "must be greater than 0 (got %s)", num(cam.VideoDuration))
	case cam.VideoDuration < 1:
		v.add(p+".videoDuration", "must be at least 1 second (got %s)", num(cam.VideoDuration))
	case cam.VideoDuration > MaxVideoDuration:
		v.add(p+".videoDuration", "must be at most %d seconds (got %s)", MaxVideoDuration, num(cam.VideoDuration))
	}
	validateSecrets(v, p+".secrets", cam.DeclaredSecrets)
	switch {
	case cam.VideoFeedID == "":
		v.add(p+".videoFeedId", "is required")
	case len(cam.VideoFeedID) > MaxCameraNameLen:
		v.add(p+".videoFeedId", "%q is longer than %d characters", cam.VideoFeedID, MaxCameraNameLen)
	case !feedIDRe.MatchString(cam.VideoFeedID):
		v.add(p+".videoFeedId", "%q may hold only letters, digits, '.', '-' and '_', starting with a letter or digit (it goes into file names)", cam.VideoFeedID)
	}
	cam.validateSub(v, p)
}

// MinFramesPerStall: the stall watchdog restarts a stream whose frames stop
// for ffmpeg.stallTimeout, so a frame must come at least this many times
// within it, or a healthy slow stream is restarted forever.
const MinFramesPerStall = 3

func (cam Camera) validateAgainstStall(v *validator, p string, stall time.Duration) {
	if cam.FrameRate <= 0 || cam.FrameRate > MaxFrameRate || stall < time.Second {
		return // reported on its own
	}
	every := time.Duration(float64(time.Second) / cam.FrameRate)
	if every*MinFramesPerStall > stall {
		v.add(p+".frameRate", "%s fps is one frame every %s, not well below ffmpeg.stallTimeout (%s): raise frameRate or ffmpeg.stallTimeout",
			num(cam.FrameRate), every.Round(time.Millisecond), stall)
	}
}

func (s S3Config) validate(v *validator) {
	switch {
	case s.S3Bucket == "":
		v.add("s3Config.s3Bucket", "is required")
	case !bucketRe.MatchString(s.S3Bucket) || strings.Contains(s.S3Bucket, ".."):
		v.add("s3Config.s3Bucket", "%q is not a bucket name (3 to 63 lower-case letters, digits, '.' and '-')", s.S3Bucket)
	}
	if strings.Contains(s.S3Path, "//") || strings.ContainsAny(s.S3Path, "\\\x00") {
		v.add("s3Config.s3Path", "%q is not a key prefix such as recordings/2025", s.S3Path)
	}
	if s.UploadConcurrency < 1 || s.UploadConcurrency > 64 {
		v.add("s3Config.uploadConcurrency", "must be 1 to 64 (got %d)", s.UploadConcurrency)
	}
	if s.PartSizeMB < 5 || s.PartSizeMB > 5120 {
		v.add("s3Config.partSizeMB", "must be 5 to 5120 (got %d): S3 parts are at least 5 MiB", s.PartSizeMB)
	}
	if s.PartConcurrency < 1 || s.PartConcurrency > 64 {
		v.add("s3Config.partConcurrency", "must be 1 to 64 (got %d)", s.PartConcurrency)
	}
	s.validatePacing(v)
	s.validateFeeds(v)
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			shown := s.Endpoint
			if err == nil && u.User != nil {
				shown = u.Redacted() // not a password in the URL
			} else if strings.Contains(shown, "@") {
				shown = "(not shown: it holds '@')"
			}
			v.add("s3Config.endpoint", "%q is not an http:// or https:// URL", shown)
		}
	}
}

func (s StorageConfig) validate(v *validator) {
	switch {
	case s.SavePath == "":
		v.add("storageConfig.savePath", "is required")
	case !filepath.IsAbs(s.SavePath):
		v.add("storageConfig.savePath", "%q must be an absolute path", s.SavePath)
	}
	if s.ClearWhenFilePathReachGB <= 0 {
		v.add("storageConfig.clearWhenFilePathReachGB", "must be greater than 0 (got %s)", num(s.ClearWhenFilePathReachGB))
	}
	if s.LowWaterPercent < 50 || s.LowWaterPercent >= 100 {
		v.add("storageConfig.lowWaterPercent", "must be at least 50 and below 100 (got %s)", num(s.LowWaterPercent))
	}
	if q := s.QuarantinePercent; q != nil && (*q < 0 || *q > 50) {
		v.add("storageConfig.quarantinePercent", "must be 0 (no bound: quarantined files are never deleted) or a percentage of the limit up to 50 (got %s)", num(*q))
	}
	if s.MinFreeGB < 0 {
		v.add("storageConfig.minFreeGB", "must not be negative (got %s)", num(s.MinFreeGB))
	}
	if s.StateDir != "" && !filepath.IsAbs(s.StateDir) {
		v.add("storageConfig.stateDir", "%q must be an absolute path", s.StateDir)
	}
	if s.ExportTempDir != "" && !filepath.IsAbs(s.ExportTempDir) {
		v.add("storageConfig.exportTempDir", "%q must be an absolute path", s.ExportTempDir)
	}
	if d := s.CatalogRetentionDays; d != nil && (*d < 0 || *d > MaxCatalogRetentionDays) {
		v.add("storageConfig.catalogRetentionDays", "must be 0 (keep every row) or a number of days up to %d (got %d)", MaxCatalogRetentionDays, *d)
	}
	if d := s.KeepActiveDays; d < 0 || d > MaxCatalogRetentionDays {
		v.add("storageConfig.keepActiveDays", "must be 0 (off) or a number of days up to %d (got %d)", MaxCatalogRetentionDays, d)
	}
	if d := s.SyncInterval.Std(); d != 0 && (d < 100*time.Millisecond || d > time.Minute) {
		v.add("storageConfig.syncInterval", "must be 0 (off) or from 100ms to 1m (got %s)", d)
	}
}

func (a API) validate(v *validator) {
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		v.add("api.listen", "%q is not host:port, such as 127.0.0.1:8080", a.Listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add("api.listen", "%q has no valid port", a.Listen)
	}
	if a.Token == "" && !IsLoopback(host) {
		v.add("api.token", "is required when api.listen (%s) is not a loopback address: set api.token or the %s environment variable, or listen on 127.0.0.1", a.Listen, TokenEnv)
	}
	for i, h := range a.AllowedHosts {
		if !validHost(strings.TrimSuffix(h, ".")) {
			v.add(fmt.Sprintf("api.allowedHosts[%d]", i), "%q is not a host name or IP address (no port, no scheme)", h)
		}
	}
	switch {
	case a.TLSCert != "" && a.TLSKey == "":
		v.add("api.tlsKey", "is required with api.tlsCert")
	case a.TLSCert == "" && a.TLSKey != "":
		v.add("api.tlsCert", "is required with api.tlsKey")
	}
	for _, f := range []struct{ name, path string }{{"api.tlsCert", a.TLSCert}, {"api.tlsKey", a.TLSKey}} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			v.add(f.name, "%q must be an absolute path", f.path)
		}
	}
	if a.MetricsAuth && a.Token == "" {
		v.add("api.metricsAuth", "needs a token: set api.token or the %s environment variable", TokenEnv)
	}
}

func (f FFmpeg) validate(v *validator) {
	if f.Path == "" {
		v.add("ffmpeg.path", "must not be empty")
	}
	if f.ProbePath == "" {
		v.add("ffmpeg.probePath", "must not be empty")
	}
	if f.StallTimeout.Std() < time.Second {
		v.add("ffmpeg.stallTimeout", "must be at least 1s (got %s)", f.StallTimeout.Std())
	}
	if f.StopTimeout.Std() < time.Second {
		v.add("ffmpeg.stopTimeout", "must be at least 1s (got %s)", f.StopTimeout.Std())
	}
	if !slices.Contains(x264Presets, f.Preset) {
		v.add("ffmpeg.preset", "%q is not one of %s", f.Preset, strings.Join(x264Presets, ", "))
	}
}

// IsLoopback reports whether a listen host only accepts local connections.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return len(h) <= 253 && hostnameRe.MatchString(h)
}

type validator struct{ problems []FieldError }

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
