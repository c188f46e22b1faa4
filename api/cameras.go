package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/supervisor"
)

// Camera is a camera as the API shows it: its live state and what it is
// configured to record. Never its password.
type Camera struct {
	Name  string               `json:"name"`
	State supervisor.StateName `json:"state"`
	Since time.Time            `json:"since"`
	// Desired is "running" or "stopped" (by an operator).
	Desired  string `json:"desired"`
	PID      int    `json:"pid,omitempty"`
	Restarts int    `json:"restarts"`
	Stalls   int    `json:"stalls"`
	// UptimeSeconds is how long the current run has been recording.
	UptimeSeconds float64          `json:"uptimeSeconds"`
	LastError     string           `json:"lastError,omitempty"`
	LastExit      *supervisor.Exit `json:"lastExit,omitempty"`
	NextAttempt   time.Time        `json:"nextAttempt,omitzero"`
	// Mode is how the current (or last) run records: copy or transcode.
	Mode        string       `json:"mode,omitempty"`
	LastSegment *Recording   `json:"lastSegment,omitempty"`
	Live        *Live        `json:"live,omitempty"`
	Config      CameraConfig `json:"config"`

	// Source is where the stream comes from ("configured", or what
	// discovery found), StreamURL the URL recorded (password masked),
	// DiscoveryError why the last discovery found nothing.
	Source         string `json:"source,omitempty"`
	StreamURL      string `json:"streamUrl,omitempty"`
	DiscoveryError string `json:"discoveryError,omitempty"`
	// FailedLogins is how many logins the camera's address refused within
	// its failedLoginWindow; at maxFailedLogins the camera waits for its
	// credentials (state waiting-credentials, until nextAttempt).
	FailedLogins int `json:"failedLogins,omitempty"`
	// Feeds, for a camera with a subStream: each feed's state and reach
	// (feeds.go).
	Feeds []Feed `json:"feeds,omitempty"`
}

// Live is ffmpeg's latest progress.
type Live struct {
	FPS         float64 `json:"fps"`
	Speed       float64 `json:"speed"`
	BitrateKbps float64 `json:"bitrateKbps"`
	Frames      int64   `json:"frames"`
	DupFrames   int64   `json:"dupFrames"`
	DropFrames  int64   `json:"dropFrames"`
}

// CameraConfig is what the camera records.
type CameraConfig struct {
	FrameRate     float64 `json:"frameRate"`
	Resolution    string  `json:"resolution"`
	VideoDuration float64 `json:"videoDuration"`
	VideoFeedID   string  `json:"videoFeedId"`
	// Source is the stream URL with the password masked.
	Source string `json:"source"`
	// MaxFailedLogins refused logins within FailedLoginWindow make the
	// camera wait for its credentials.
	MaxFailedLogins   int             `json:"maxFailedLogins"`
	FailedLoginWindow config.Duration `json:"failedLoginWindow"`
}

func (s *Server) camera(ctx context.Context, st supervisor.Status) Camera {
	cam := Camera{
		Name: st.Camera, State: st.State, Since: st.Since, PID: st.PID, Restarts: st.Restarts, Stalls: st.Stalls,
		LastError: s.deps.Redactor.String(st.LastError), LastExit: st.LastExit, NextAttempt: st.NextAttempt, Desired: "running", Mode: st.Mode,
		Source: st.Source, StreamURL: s.deps.Redactor.String(st.StreamURL), DiscoveryError: s.deps.Redactor.String(st.DiscoveryError),
		FailedLogins: st.FailedLogins,
	}
	if !st.Desired {
		cam.Desired = "stopped"
	}
	if cam.LastExit != nil {
		e := *cam.LastExit
		e.Message = s.deps.Redactor.String(e.Message)
		cam.LastExit = &e
	}
	if st.State == supervisor.Recording && !st.RecordingSince.IsZero() {
		cam.UptimeSeconds = s.deps.Now().Sub(st.RecordingSince).Seconds()
	}
	if p := st.Progress; p != nil {
		cam.Live = &Live{FPS: p.FPS, Speed: p.Speed, BitrateKbps: p.BitrateKbps, Frames: p.Frame, DupFrames: p.DupFrames, DropFrames: p.DropFrames}
	}
	if cfg, err := s.deps.Supervisor.CameraConfig(st.Camera); err == nil {
		cam.Config = cameraConfig(cfg)
		cam.Config.Source = s.deps.Redactor.String(cam.Config.Source) // and the config's declared secrets
	}
	if last, err := s.deps.Catalog.Latest(ctx, st.Camera); err == nil {
		r := recording(last)
		cam.LastSegment = &r
	} else if !errors.Is(err, catalog.ErrNotFound) && !errors.Is(err, catalog.ErrUnavailable) {
		s.log.Warn().Err(err).Msg("cannot read the last segment")
	}
	s.feeds(ctx, &cam, st)
	return cam
}

func cameraConfig(c config.Camera) CameraConfig {
	return CameraConfig{FrameRate: c.FrameRate, Resolution: c.Resolution, VideoDuration: c.VideoDuration,
		VideoFeedID: c.VideoFeedID, Source: c.RedactedURL(),
		MaxFailedLogins: c.MaxFailedLogins, FailedLoginWindow: c.FailedLoginWindow}
}

func (s *Server) listCameras(c echo.Context) error {
	sts := s.deps.Supervisor.Statuses()
	out := make([]Camera, len(sts))
	for i, st := range sts {
		out[i] = s.camera(c.Request().Context(), st)
	}
	return c.JSON(http.StatusOK, map[string]any{"cameras": out})
}

func (s *Server) getCamera(c echo.Context) error {
	st, err := s.deps.Supervisor.Status(c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.camera(c.Request().Context(), st))
}

// startCamera starts a camera and answers once ffmpeg is starting (or the
// camera waits in backoff), within a few seconds.
func (s *Server) startCamera(c echo.Context) error {
	name := c.Param("name")
	if err := s.deps.Supervisor.Start(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	if err := s.deps.Supervisor.WaitFor(ctx, name, func(st supervisor.Status) bool { return st.State != supervisor.Stopped }); err != nil {
		return apiError(http.StatusConflict, "the camera did not start: is the daemon shutting down?")
	}
	st, err := s.deps.Supervisor.Status(name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.camera(c.Request().Context(), st))
}

// retryCamera is the page's "Retry now": a camera waiting for its
// credentials (or in backoff) tries at once, its next login going past the
// failed-login budget once; a refused one counts like any other, so each
// retry is one more failed login toward the camera's lockout. It answers
// once the camera has tried (left its wait, or restarted), within a few
// seconds; 409 for a stopped camera.
func (s *Server) retryCamera(c echo.Context) error {
	name := c.Param("name")
	before, err := s.deps.Supervisor.Status(name)
	if err != nil {
		return err
	}
	if err := s.deps.Supervisor.Retry(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	_ = s.deps.Supervisor.WaitFor(ctx, name, func(st supervisor.Status) bool {
		waiting := st.State == supervisor.WaitingCredentials || st.State == supervisor.Backoff
		return !waiting || st.Restarts != before.Restarts
	})
	st, err := s.deps.Supervisor.Status(name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.camera(c.Request().Context(), st))
}

// stopCamera stops a camera; it answers once ffmpeg has finalised its
// segment and exited.
func (s *Server) stopCamera(c echo.Context) error {
	name := c.Param("name")
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.StopTimeout)
	defer cancel()
	if err := s.deps.Supervisor.Stop(ctx, name); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return apiError(http.StatusConflict, "the camera is still stopping")
		}
		return err
	}
	st, err := s.deps.Supervisor.Status(name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.camera(c.Request().Context(), st))
}
