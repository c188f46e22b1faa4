// Package config loads cctvd's config.json in a fixed order: defaults, strict
// decode (an unknown or misspelt key is an error that names its path),
// normalisation, then Validate, which reports every problem with the path of
// the field at fault, e.g. `cameras[1].resolution: "1280*720" is not WIDTHxHEIGHT`.
//
// The file from the customer's design note loads exactly as written; every
// extension (RTSP port and path, stream URL, S3 endpoint, API, ffmpeg and log
// settings) is optional and has a safe default.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cctvd/cctvd/internal/redact"

	"github.com/cctvd/cctvd/layout"
)

// Config is the whole of config.json.
type Config struct {
	// Cameras to record. At least one.
	Cameras []Camera `json:"cameras"`
	// S3Config says where closed segments are uploaded.
	S3Config S3Config `json:"s3Config"`
	// AWSCredentials are static S3 credentials. When absent, the AWS SDK's
	// default chain applies (environment, shared files, instance role).
	AWSCredentials *AWSCredentials `json:"awsCredentials,omitempty"`
	// StorageConfig says where recordings are kept and when they are deleted.
	StorageConfig StorageConfig `json:"storageConfig"`
	// API is the REST API. Default: listen on 127.0.0.1:8080 without a token.
	API API `json:"api"`
	// FFmpeg holds the recorder's process settings.
	FFmpeg FFmpeg `json:"ffmpeg"`
	// Log holds the daemon's log settings.
	Log Log `json:"log"`
	// Alerts says when to tell a person, and where (webhooks, MQTT).
	// Default: events are kept for the API and the page only.
	Alerts Alerts `json:"alerts"`
	// DeclaredSecrets are more secrets to mask in logs, API responses and
	// errors (a token inside a stream URL, say). Default none. Camera
	// passwords, the AWS secret key, the API token and the credentials in
	// a stream URL are secrets without being declared.
	DeclaredSecrets []string `json:"secrets,omitempty"`
}

// Camera is one IP camera.
type Camera struct {
	// CameraName is unique and goes into file names: letters, digits, '.'
	// and '-', starting with a letter or digit, at most 64 characters.
	CameraName string `json:"cameraName"`
	// IPAddress is the camera's IP address or host name, without a port.
	// Required unless StreamURL is set.
	IPAddress string `json:"ipAddress"`
	// UserName and Password authenticate to the camera (RTSP basic or
	// digest). Either may be empty for a camera without authentication.
	UserName string `json:"userName"`
	Password string `json:"password"`
	// FrameRate is the number of frames per second recorded (> 0, ≤ 120).
	FrameRate float64 `json:"frameRate"`
	// Resolution is the recorded size, WIDTHxHEIGHT with even numbers.
	Resolution string `json:"resolution"`
	// VideoDuration is the length of each file in seconds (1 to 86400).
	VideoDuration float64 `json:"videoDuration"`
	// VideoFeedID goes into file names; it need not be unique.
	VideoFeedID string `json:"videoFeedId"`

	// RTSPPort is the camera's RTSP port. Default 554.
	RTSPPort int `json:"rtspPort,omitempty"`
	// RTSPPath is the stream's path on the camera, such as
	// "/Streaming/Channels/101". Default none: the stream is found by
	// Discovery (or "/" with discovery off).
	RTSPPath string `json:"rtspPath,omitempty"`
	// StreamURL, when set, replaces ipAddress, rtspPort and rtspPath with a
	// full URL (rtsp, rtsps, http, https, rtmp or file). userName and
	// password are added to it unless it carries its own.
	StreamURL string `json:"streamUrl,omitempty"`
	// RTSPTransport is "tcp" (default) or "udp".
	RTSPTransport string `json:"rtspTransport,omitempty"`
	// Mode is how the stream is recorded: "transcode" (decode, then encode
	// H.264 at frameRate and resolution), "copy" (keep the camera's own
	// stream: no decoding, its frame rate, segment cuts on its keyframes) or
	// "auto" (default: copy when ffprobe finds the camera already sends
	// H.264 or H.265 at the resolution and at most the frame rate, else
	// transcode).
	Mode string `json:"mode,omitempty"`
	// HWAccel transcodes on a GPU: "vaapi", "qsv" or "nvenc". Default ""
	// (software). Without the device or encoder, recording falls back to
	// software with a warning.
	HWAccel string `json:"hwaccel,omitempty"`
	// HWAccelDevice is the VAAPI/QSV render node. Default /dev/dri/renderD128.
	HWAccelDevice string `json:"hwaccelDevice,omitempty"`
	// DeclaredSecrets are more secrets of this camera to mask (see
	// Config.DeclaredSecrets). Default none.
	DeclaredSecrets []string `json:"secrets,omitempty"`

	// ONVIFPort is the camera's ONVIF (HTTP) port. Default 80.
	ONVIFPort int `json:"onvifPort,omitempty"`
	// Discovery finds the stream of a camera that has neither rtspPath nor
	// streamUrl: "auto" (default: ONVIF, then vendors' well-known RTSP
	// paths), "onvif", "paths", or "off" (record rtsp://ip:rtspPort/).
	Discovery string `json:"discovery,omitempty"`
	// ConfigureCamera lets ONVIF discovery ask the camera itself for the
	// configured resolution and frame rate (H.264, SetVideoEncoderConfiguration
	// on the profile cctvd records, kept across the camera's reboots) when
	// none of its profiles sends them, so that they are recorded as they
	// come (copy) instead of transcoded. It changes the camera's settings,
	// which whatever else watches that profile sees too. Needs ONVIF
	// discovery (no rtspPath or streamUrl; discovery auto or onvif) and a
	// whole frameRate. Default false.
	ConfigureCamera bool `json:"configureCamera,omitempty"`

	// MaxFailedLogins is how many refused logins cctvd allows itself at the
	// camera's address (its host, whatever the port or path) within
	// FailedLoginWindow: ffmpeg's runs, ffprobe's probes and discovery
	// (ONVIF, RTSP) count together, and cameras at the same address share
	// the count. Cameras lock an address out after about five (Hikvision,
	// Dahua). Past it, the camera waits for its credentials. Default 3 (1
	// to 100).
	MaxFailedLogins int `json:"maxFailedLogins,omitempty"`
	// FailedLoginWindow is how long a refused login counts. Default "30m"
	// (1m to 24h).
	FailedLoginWindow Duration `json:"failedLoginWindow,omitempty"`

	// SubStream, when set, records the camera's second stream as a feed
	// of its own (see feeds.go). Default none: one feed, as the design
	// note has it.
	SubStream *SubStream `json:"subStream,omitempty"`
	// Feed is what a camera's derived run records: "" for its main stream
	// (as configured), FeedSub for the run SubCamera derives. Never in the
	// file.
	Feed string `json:"-"`
	// Activity indexes the camera's motion from the recording ffmpeg's own
	// frames (keyframes when copying). Default true (DefaultActivity).
	Activity *bool `json:"activity,omitempty"`
}

// ActivityEnabled is Activity with its default.
func (cam Camera) ActivityEnabled() bool {
	if cam.Activity == nil {
		return DefaultActivity
	}
	return *cam.Activity
}

// NeedsDiscovery says whether the camera's stream must be found: no
// rtspPath, no streamUrl, and discovery not off.
func (cam Camera) NeedsDiscovery() bool {
	return cam.RTSPPath == "" && cam.StreamURL == "" && cam.Discovery != DiscoveryOff
}

// S3Config says where segments go.
type S3Config struct {
	// S3Bucket is the bucket name.
	S3Bucket string `json:"s3Bucket"`
	// S3Path is the key prefix inside the bucket, without leading or
	// trailing slashes (they are trimmed). May be empty.
	S3Path string `json:"s3Path"`
	// Endpoint is an S3-compatible server's URL (MinIO, Ceph, Wasabi, B2).
	// Default: AWS's own endpoint for the region.
	Endpoint string `json:"endpoint,omitempty"`
	// ForcePathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key. Default: true when Endpoint is set, else false.
	ForcePathStyle *bool `json:"forcePathStyle,omitempty"`
	// UploadConcurrency is how many segments are uploaded at once. Default 2.
	UploadConcurrency int `json:"uploadConcurrency,omitempty"`
	// PartSizeMB: files this big or bigger go up as multipart uploads in
	// parts of this many MiB (5 to 5120). Default 16.
	PartSizeMB int `json:"partSizeMB,omitempty"`
	// PartConcurrency is how many parts of one file go up at once. Default 4.
	PartConcurrency int `json:"partConcurrency,omitempty"`
	// MaxUploadMbps caps the uploads, in Mbit/s (10^6 bits a second) of
	// bytes actually sent to S3 (retries, parts and requests included).
	// Default 0: no cap.
	MaxUploadMbps float64 `json:"maxUploadMbps,omitempty"`
	// UploadSchedule are weekly windows with a cap of their own (mbps, 0
	// pauses the uploads), in TimeZone's wall time; outside every window
	// MaxUploadMbps applies. The first window that holds a moment wins.
	// Default none.
	UploadSchedule []UploadWindow `json:"uploadSchedule,omitempty"`
	// TimeZone is the IANA name of the zone UploadSchedule's times are in,
	// such as "Europe/Paris". Default: the system's.
	TimeZone string `json:"timeZone,omitempty"`
	// UploadOrder is which waiting segment goes up first: "oldest"
	// (default) or "newest".
	UploadOrder string `json:"uploadOrder,omitempty"`
	// UploadFeeds is which feeds of the cameras with a subStream go up
	// when: "all" (default: both, a camera's sub feed first), "sub" (the
	// sub feeds continuously, a main feed only on request) or
	// "sub+schedule" (the main feeds inside uploadSchedule's windows).
	UploadFeeds string `json:"uploadFeeds,omitempty"`
}

// UploadWindow is one window of s3Config.uploadSchedule.
type UploadWindow struct {
	// Days the window starts on: "mon" to "sun". Default: every day.
	Days []string `json:"days,omitempty"`
	// From and To are wall times, "HH:MM" (To may be "24:00"). A window
	// whose To is not after From runs past midnight into the next day.
	From string `json:"from"`
	To   string `json:"to"`
	// Mbps is the cap inside the window, in Mbit/s; 0 pauses the uploads.
	Mbps float64 `json:"mbps"`
}

// The upload orders (s3Config.uploadOrder).
const (
	UploadOldest = "oldest"
	UploadNewest = "newest"
)

// WeekDays are the day names of s3Config.uploadSchedule[].days, Sunday
// first as time.Weekday counts them.
var WeekDays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Location is TimeZone's location: time.Local when it is empty, and when
// it does not load (Validate reports that).
func (s S3Config) Location() *time.Location {
	if s.TimeZone == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return time.Local
	}
	return loc
}

// AWSCredentials are static credentials for S3.
type AWSCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	// Region is the bucket's region. Default "us-east-1" when an endpoint
	// is set; otherwise required.
	Region string `json:"region"`
}

// StorageConfig is the local side.
type StorageConfig struct {
	// SavePath is the absolute path of the local folder for recordings.
	SavePath string `json:"savePath"`
	// ClearAfterUpload deletes each local file once S3 has verified it.
	// Default false.
	ClearAfterUpload bool `json:"clearAfterUpload"`
	// ClearWhenFilePathReachGB is the size of SavePath, in GB (10^9 bytes),
	// at which the oldest recordings are deleted. May be fractional.
	ClearWhenFilePathReachGB float64 `json:"clearWhenFilePathReachGB"`
	// StateDir holds the daemon's own state (catalog, desired camera
	// states). Default: SavePath/.cctvd.
	StateDir string `json:"stateDir,omitempty"`
	// ExportTempDir is where exports download the footage only S3 holds
	// (absolute). An export that would push its filesystem under the
	// free-space floor is refused: MinFreeGB on savePath's filesystem
	// (where it must also leave the room the recordings may still take
	// below their limit), else that filesystem's own default floor; on a
	// tmpfs, one that would take more than half of MemAvailable. Default:
	// $TMPDIR, or /tmp (DefaultExportTempDir).
	ExportTempDir string `json:"exportTempDir,omitempty"`
	// LowWaterPercent: once the limit is reached, the oldest recordings are
	// deleted until savePath is below this percentage of it. Default 95.
	LowWaterPercent float64 `json:"lowWaterPercent,omitempty"`
	// QuarantinePercent bounds the quarantine (damaged files kept in
	// savePath/.quarantine instead of uploaded) to this percentage of the
	// limit: beyond it, and only when retention must free space (the size
	// limit or the free-space floor), its files are deleted after the
	// uploaded recordings and before the recordings S3 lacks. 0: no bound,
	// retention never deletes a quarantined file. Default 2 (see
	// QuarantineShare).
	QuarantinePercent *float64 `json:"quarantinePercent,omitempty"`
	// MinFreeGB is the filesystem's free-space floor: below it the oldest
	// recordings are deleted even under the size limit, so recording never
	// stops on a full disk. Default 1 GB, or 5% of a smaller filesystem.
	MinFreeGB float64 `json:"minFreeGB,omitempty"`
	// CatalogRetentionDays: the catalog's rows of segments no longer on the
	// local disk (uploaded, or lost), and its closed gaps, are pruned once
	// this many days old, so that the catalog stays small for years.
	// 0 keeps them forever. Default 30.
	CatalogRetentionDays *int `json:"catalogRetentionDays,omitempty"`
	// KeepActiveDays: segments with activity that started less than this
	// many days ago are deleted by retention only after the others (each
	// kind still uploaded ones first). 0 (default) keeps no such order.
	KeepActiveDays int `json:"keepActiveDays,omitempty"`
	// SyncInterval is how often the segment each ffmpeg is writing is
	// flushed to disk (fdatasync): a power cut loses at most about this
	// much of it. Default "2s"; "0" leaves it to the kernel (up to about
	// 30 s lost).
	SyncInterval Duration `json:"syncInterval"`
}

// QuarantineShare is QuarantinePercent with its default, as a fraction of
// the limit; 0 means the quarantine has no bound.
func (s StorageConfig) QuarantineShare() float64 {
	if s.QuarantinePercent == nil {
		return DefaultQuarantinePercent / 100.0
	}
	return *s.QuarantinePercent / 100
}

// CatalogDays is CatalogRetentionDays with its default.
func (s StorageConfig) CatalogDays() int {
	if s.CatalogRetentionDays == nil {
		return DefaultCatalogRetentionDays
	}
	return *s.CatalogRetentionDays
}

// API is the REST API.
type API struct {
	// Listen is the API's address. Default "127.0.0.1:8080".
	Listen string `json:"listen,omitempty"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every /api/ route. Default: read from the environment variable
	// CCTVD_API_TOKEN, else none (then Listen must be a loopback address).
	Token string `json:"token,omitempty"`
	// AllowedHosts are host names, besides localhost, loopback and IP
	// addresses and the listen host, that requests may name in their Host
	// header (DNS rebinding protection), such as "nvr.local". Default none.
	AllowedHosts []string `json:"allowedHosts,omitempty"`
	// TLSCert and TLSKey are the PEM files of the API's TLS certificate
	// and key, absolute paths; both or neither. A reload reads them again.
	// Default: no TLS.
	TLSCert string `json:"tlsCert,omitempty"`
	TLSKey  string `json:"tlsKey,omitempty"`
	// MetricsAuth requires the token on /metrics too. Default false.
	MetricsAuth bool `json:"metricsAuth,omitempty"`
	// MaxExportRange is the longest range one export or spans request may
	// cover (1m to 744h). Default "24h".
	MaxExportRange Duration `json:"maxExportRange,omitempty"`
	// LiveMaxViewers is the most live viewers at once, of every camera
	// (1 to 100: each holds one of the API's 128 connections). Default 32.
	LiveMaxViewers int `json:"liveMaxViewers,omitempty"`
	// LiveMaxViewersPerCamera is the most live viewers of one camera at
	// once (1 to liveMaxViewers). Default 16.
	LiveMaxViewersPerCamera int `json:"liveMaxViewersPerCamera,omitempty"`
}

// FFmpeg holds the recorder's process settings.
type FFmpeg struct {
	// Path is the ffmpeg binary. Default "ffmpeg" (found on PATH).
	Path string `json:"path,omitempty"`
	// ProbePath is the ffprobe binary. Default "ffprobe".
	ProbePath string `json:"probePath,omitempty"`
	// StallTimeout: when ffmpeg's progress (frame and out_time) does not
	// advance for this long, the camera is stalled and ffmpeg is restarted.
	// Default "15s".
	StallTimeout Duration `json:"stallTimeout,omitempty"`
	// StopTimeout is how long ffmpeg gets to finalise its segment after
	// SIGINT (stop) or SIGTERM (stall) before it is killed. Default "10s".
	StopTimeout Duration `json:"stopTimeout,omitempty"`
	// Preset is libx264's preset when transcoding. Default "ultrafast":
	// the cheapest line within 0.005 SSIM of "veryfast" (the default
	// before it) for the design note's cameras, about 40 % less CPU for 10
	// to 20 % larger files (make bench, step transcode).
	Preset string `json:"preset,omitempty"`
}

// Log holds the daemon's log settings.
type Log struct {
	// Level is debug, info, warn or error. Default "info".
	Level string `json:"level,omitempty"`
	// Format is "json", "console" or "auto" (console on a terminal, JSON
	// otherwise). Default "auto".
	Format string `json:"format,omitempty"`
}

// Duration is a time.Duration that reads from JSON as a Go duration string
// ("15s", "1m30s") or as a number of seconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case float64:
		*d = Duration(v * float64(time.Second))
		return nil
	case string:
		p, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"15s\"", v)
		}
		*d = Duration(p)
		return nil
	}
	return fmt.Errorf("%s is not a duration such as \"15s\"", b)
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Recording modes.
const (
	ModeAuto      = "auto"
	ModeTranscode = "transcode"
	ModeCopy      = "copy"
)

// Discovery methods (cameras[].discovery).
const (
	DiscoveryAuto  = "auto"
	DiscoveryONVIF = "onvif"
	DiscoveryPaths = "paths"
	DiscoveryOff   = "off"
)

// Defaults for the optional settings.
const (
	DefaultRTSPPort  = 554
	DefaultONVIFPort = 80
	// DefaultRTSPPath is the path of a camera without one when discovery
	// is off.
	DefaultRTSPPath          = "/"
	DefaultRTSPTransport     = "tcp"
	DefaultHWAccelDevice     = "/dev/dri/renderD128"
	DefaultFFmpegPath        = "ffmpeg"
	DefaultProbePath         = "ffprobe"
	DefaultListen            = "127.0.0.1:8080"
	DefaultStallTimeout      = 15 * time.Second
	DefaultStopTimeout       = 10 * time.Second
	DefaultPreset            = "ultrafast"
	DefaultRegion            = "us-east-1"
	DefaultUploadConcurrency = 2
	DefaultPartSizeMB        = 16
	DefaultPartConcurrency   = 4
	DefaultLowWaterPercent   = 95
	DefaultTempDir           = "/tmp"
	// DefaultQuarantinePercent is storageConfig.quarantinePercent's default.
	DefaultQuarantinePercent = 2
	DefaultMaxExportRange    = 24 * time.Hour
	// DefaultCatalogRetentionDays is storageConfig.catalogRetentionDays's default.
	DefaultCatalogRetentionDays = 30
	// MaxCatalogRetentionDays bounds storageConfig.catalogRetentionDays (100 years).
	MaxCatalogRetentionDays = 36500
	DefaultSyncInterval     = 2 * time.Second
	// DefaultMaxFailedLogins and DefaultFailedLoginWindow are
	// cameras[].maxFailedLogins's and failedLoginWindow's defaults: under
	// the lockout of cameras that lock an address out after five.
	DefaultMaxFailedLogins   = 3
	DefaultFailedLoginWindow = 30 * time.Minute
	// MaxFailedLoginsLimit and the window's bounds bound them.
	MaxFailedLoginsLimit = 100
	MinFailedLoginWindow = time.Minute
	MaxFailedLoginWindow = 24 * time.Hour
	// DefaultActivity is cameras[].activity's default: on.
	DefaultActivity = true
	// TokenEnv is the environment variable read when api.token is empty.
	TokenEnv = "CCTVD_API_TOKEN"
)

// Load reads, decodes, normalises and validates the file at path.
// getenv supplies environment variables (os.Getenv in production).
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes, normalises and validates a config held in memory.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	cfg := Default()
	if err := decodeStrict(data, cfg); err != nil {
		return nil, err
	}
	cfg.normalize(getenv)
	if err := cfg.Validate(); err != nil {
		// A message quoting a bad value must not show a secret of this
		// very config (a password pasted into ipAddress or a path): the
		// daemon's redactor knows only the secrets of the config before.
		return nil, &maskedError{err: err, red: redact.New(cfg.Secrets()...)}
	}
	return cfg, nil
}

// maskedError is a config error whose text has the config's own secrets
// masked.
type maskedError struct {
	err error
	red *redact.Redactor
}

func (e *maskedError) Error() string { return e.red.String(e.err.Error()) }
func (e *maskedError) Unwrap() error { return e.err }

// Default returns a Config holding every default, before decoding.
func Default() *Config {
	return &Config{
		StorageConfig: StorageConfig{SyncInterval: Duration(DefaultSyncInterval)},
		API: API{Listen: DefaultListen, MaxExportRange: Duration(DefaultMaxExportRange),
			LiveMaxViewers: DefaultLiveMaxViewers, LiveMaxViewersPerCamera: DefaultLiveMaxViewersPerCamera},
		FFmpeg: FFmpeg{
			Path:         DefaultFFmpegPath,
			ProbePath:    DefaultProbePath,
			StallTimeout: Duration(DefaultStallTimeout),
			StopTimeout:  Duration(DefaultStopTimeout),
			Preset:       DefaultPreset,
		},
		Log:    Log{Level: "info", Format: "auto"},
		Alerts: defaultAlerts(),
	}
}

// decodeStrict checks every key and value type against Config (so an error
// names its path, which encoding/json cannot do), then decodes.
func decodeStrict(data []byte, cfg *Config) error {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return syntaxError(data, err)
	}
	if dec.More() {
		return errors.New("invalid JSON: more than one value in the file")
	}
	if problems := checkShape("", raw, typeOfConfig); len(problems) > 0 {
		return &ValidationError{Problems: problems}
	}
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &ValidationError{Problems: []FieldError{{Path: te.Field, Msg: "must be " + te.Type.String() + ", not a JSON " + te.Value}}}
		}
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := 1, 1
		for _, c := range data[:max(0, min(int(se.Offset)-1, len(data)))] { // Offset is just past the bad byte
			if c == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: the file is empty")
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// normalize fills derived defaults after decoding.
// DefaultExportTempDir is storageConfig.exportTempDir's default: $TMPDIR
// when it is an absolute path, else /tmp.
func DefaultExportTempDir(getenv func(string) string) string {
	if d := getenv("TMPDIR"); filepath.IsAbs(d) {
		return d
	}
	return DefaultTempDir
}

func (c *Config) normalize(getenv func(string) string) {
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		if cam.RTSPPort == 0 {
			cam.RTSPPort = DefaultRTSPPort
		}
		// An empty rtspPath stays empty: it means "discover" (URL uses
		// DefaultRTSPPath when discovery is off).
		if cam.RTSPPath != "" && !strings.HasPrefix(cam.RTSPPath, "/") {
			cam.RTSPPath = "/" + cam.RTSPPath
		}
		if cam.ONVIFPort == 0 {
			cam.ONVIFPort = DefaultONVIFPort
		}
		if cam.Discovery == "" {
			cam.Discovery = DiscoveryAuto
		}
		if cam.RTSPTransport == "" {
			cam.RTSPTransport = DefaultRTSPTransport
		}
		if cam.Mode == "" {
			cam.Mode = ModeAuto
		}
		if cam.HWAccelDevice == "" && (cam.HWAccel == "vaapi" || cam.HWAccel == "qsv") {
			cam.HWAccelDevice = DefaultHWAccelDevice
		}
		if cam.MaxFailedLogins == 0 {
			cam.MaxFailedLogins = DefaultMaxFailedLogins
		}
		if cam.FailedLoginWindow == 0 {
			cam.FailedLoginWindow = Duration(DefaultFailedLoginWindow)
		}
		cam.normalizeSub()
	}
	c.S3Config.S3Path = strings.Trim(c.S3Config.S3Path, "/")
	if c.S3Config.UploadConcurrency == 0 {
		c.S3Config.UploadConcurrency = DefaultUploadConcurrency
	}
	if c.S3Config.PartSizeMB == 0 {
		c.S3Config.PartSizeMB = DefaultPartSizeMB
	}
	if c.S3Config.PartConcurrency == 0 {
		c.S3Config.PartConcurrency = DefaultPartConcurrency
	}
	if c.S3Config.UploadOrder == "" {
		c.S3Config.UploadOrder = UploadOldest
	}
	if c.S3Config.UploadFeeds == "" {
		c.S3Config.UploadFeeds = UploadFeedsAll
	}
	if c.S3Config.ForcePathStyle == nil {
		v := c.S3Config.Endpoint != ""
		c.S3Config.ForcePathStyle = &v
	}
	if c.AWSCredentials != nil && c.AWSCredentials.Region == "" && c.S3Config.Endpoint != "" {
		c.AWSCredentials.Region = DefaultRegion
	}
	if c.StorageConfig.SavePath != "" {
		c.StorageConfig.SavePath = filepath.Clean(c.StorageConfig.SavePath)
		if c.StorageConfig.StateDir == "" && filepath.IsAbs(c.StorageConfig.SavePath) {
			c.StorageConfig.StateDir = layout.DefaultStateDir(c.StorageConfig.SavePath)
		}
	}
	if c.StorageConfig.LowWaterPercent == 0 {
		c.StorageConfig.LowWaterPercent = DefaultLowWaterPercent
	}
	if c.StorageConfig.ExportTempDir == "" {
		c.StorageConfig.ExportTempDir = DefaultExportTempDir(getenv)
	}
	c.StorageConfig.ExportTempDir = filepath.Clean(c.StorageConfig.ExportTempDir)
	if c.StorageConfig.StateDir != "" {
		c.StorageConfig.StateDir = filepath.Clean(c.StorageConfig.StateDir)
	}
	if c.API.Token == "" && getenv != nil {
		c.API.Token = getenv(TokenEnv)
	}
	c.Alerts.normalize()
}

// Region is the bucket's region: awsCredentials.region, or DefaultRegion
// with an endpoint (with or without the credentials block); "" leaves it to
// the AWS SDK's default chain.
func (c *Config) Region() string {
	if c.AWSCredentials != nil && c.AWSCredentials.Region != "" {
		return c.AWSCredentials.Region
	}
	if c.S3Config.Endpoint != "" {
		return DefaultRegion
	}
	return ""
}

// LimitBytes is clearWhenFilePathReachGB in bytes (GB = 10^9 bytes).
func (s StorageConfig) LimitBytes() int64 {
	return int64(s.ClearWhenFilePathReachGB * 1e9)
}

// Camera returns the camera named name.
func (c *Config) Camera(name string) (Camera, bool) {
	for _, cam := range c.Cameras {
		if cam.CameraName == name {
			return cam, true
		}
	}
	return Camera{}, false
}
