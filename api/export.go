package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/export"
)

// Exporter is what the API needs of exports.
type Exporter interface {
	// Spans lays out a camera's footage in [from, to).
	Spans(ctx context.Context, camera string, from, to time.Time) (export.Timeline, error)
	// Clip returns the MP4 of a camera's footage in [from, to); a
	// *export.NoFootageError when there is none. Close it when done.
	Clip(ctx context.Context, camera string, from, to time.Time) (*export.Clip, error)
	// ClipCut is Clip cut to windows of the range (the activity in it).
	ClipCut(ctx context.Context, camera string, from, to time.Time, cut *export.ManifestWindows) (*export.Clip, error)
}

// exportRoutes registers the spans and export routes when there is an
// exporter.
func (s *Server) exportRoutes(g *echo.Group) {
	if s.deps.Export == nil {
		return
	}
	g.GET("/cameras/:name/spans", s.cameraSpans)
	g.GET("/cameras/:name/export", s.cameraExport)
	g.GET("/cameras/:name/export/manifest", s.cameraExportManifest)
}

// exportRange reads and checks the camera and the range of a spans or
// export request. Errors name the parameter, never repeat its value.
func (s *Server) exportRange(c echo.Context) (string, time.Time, time.Time, error) {
	name := c.Param("name")
	var times [2]time.Time
	for i, p := range []string{"from", "to"} {
		v := c.QueryParam(p)
		if v == "" {
			return "", time.Time{}, time.Time{}, apiError(http.StatusBadRequest, p+" is required: an RFC 3339 time such as 2026-01-06T14:03:00Z")
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return "", time.Time{}, time.Time{}, apiError(http.StatusBadRequest, p+" is not an RFC 3339 time such as 2026-01-06T14:03:00Z or 2026-01-06T15:03:00.5+01:00")
		}
		times[i] = t.UTC()
	}
	from, to := times[0], times[1]
	if !from.Before(to) {
		return "", from, to, apiError(http.StatusBadRequest, "from must be before to")
	}
	limit := s.cfg.MaxExportRange
	if limit <= 0 {
		limit = config.DefaultMaxExportRange
	}
	if to.Sub(from) > limit {
		return "", from, to, apiError(http.StatusBadRequest, fmt.Sprintf("from and to are more than %s apart (api.maxExportRange)", limit))
	}
	known, err := s.knownCamera(c.Request().Context(), name)
	if err != nil {
		return "", from, to, err
	}
	if !known {
		return "", from, to, apiError(http.StatusNotFound, "no camera by that name, configured or recorded")
	}
	return name, from, to, nil
}

// knownCamera: configured, or with recordings in the catalog (a camera
// removed from the config keeps its footage).
func (s *Server) knownCamera(ctx context.Context, name string) (bool, error) {
	if s.deps.Supervisor != nil {
		if _, err := s.deps.Supervisor.CameraConfig(name); err == nil {
			return true, nil
		}
	}
	if s.deps.Catalog == nil {
		return false, nil
	}
	recs, _, err := s.deps.Catalog.List(ctx, catalog.Filter{Camera: name, Limit: 1})
	return len(recs) > 0, err
}

func (s *Server) cameraSpans(c echo.Context) error {
	name, from, to, err := s.exportRange(c)
	if err != nil {
		return err
	}
	tl, err := s.deps.Export.Spans(c.Request().Context(), name, from, to)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tl)
}

// noFootage is the 404 body of a range without footage.
type noFootage struct {
	Error  string        `json:"error"`
	Before *export.Range `json:"before"`
	After  *export.Range `json:"after"`
	// Damaged: the range has segments, none of which can be read.
	Damaged string `json:"damaged,omitempty"`
}

// clip gets the clip of a request, answering the errors that have their
// own status: a range without footage (404, with the nearest footage), a
// change of video format (409), too little temporary space for what must
// be downloaded (503, saying so), too many builds at once (503).
func (s *Server) clip(c echo.Context) (*export.Clip, error) {
	name, from, to, err := s.exportRange(c)
	if err != nil {
		return nil, err
	}
	feed := c.QueryParam("feed")
	if feed != export.FeedBest && feed != export.FeedMain && feed != export.FeedSub {
		return nil, apiError(http.StatusBadRequest, "feed is main or sub (absent: the best copy, the main feed where it exists)")
	}
	cut, err := s.activityCut(c, name, from, to)
	if err != nil {
		return nil, err
	}
	var clip *export.Clip
	switch fe, ok := s.deps.Export.(FeedExporter); {
	case ok:
		clip, err = fe.ClipCutFeed(c.Request().Context(), name, from, to, cut, feed)
	case cut != nil:
		clip, err = s.deps.Export.ClipCut(c.Request().Context(), name, from, to, cut)
	default:
		clip, err = s.deps.Export.Clip(c.Request().Context(), name, from, to)
	}
	var mixed *export.MixedError
	if errors.As(err, &mixed) {
		return nil, c.JSON(http.StatusMultipleChoices, mixedParts(name, mixed))
	}
	var nf *export.NoFootageError
	var fc *export.FormatChangeError
	var ns *export.SpaceError
	switch {
	case errors.As(err, &nf):
		return nil, c.JSON(http.StatusNotFound, noFootage{Error: "no footage between from and to", Before: nf.Before, After: nf.After, Damaged: nf.Damaged})
	case errors.As(err, &fc):
		return nil, apiError(http.StatusConflict, fc.Error())
	case errors.As(err, &ns): // a 5xx HTTPError would be answered as an internal error
		return nil, c.JSON(http.StatusServiceUnavailable, map[string]string{"error": s.deps.Redactor.String(ns.Error())})
	case errors.Is(err, export.ErrBusy):
		c.Response().Header().Set("Retry-After", "5")
		return nil, c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "other exports are being built: try again in a moment"})
	case err != nil:
		return nil, err
	}
	return clip, nil
}

// cameraExport serves the MP4 of a range with Range support (seeking in a
// browser or VLC), its manifest linked from the Link header.
func (s *Server) cameraExport(c echo.Context) error {
	clip, err := s.clip(c)
	if clip == nil {
		return err
	}
	defer clip.Close()
	m := clip.Name()
	w := s.streaming(c) // a long clip to a slow client: bounded per write, not in all
	h := w.Header()
	h.Set(echo.HeaderContentType, "video/mp4")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf("inline; filename=%q", m))
	h.Set("ETag", clip.ETag())
	h.Set("Link", fmt.Sprintf(`<%s>; rel="describedby"; type="application/json"`, manifestURL(c.Param("name"), clip.Requested(), c.QueryParams())))
	r := &readErr{r: io.NewSectionReader(clip, 0, clip.Size())}
	http.ServeContent(w, c.Request(), m, time.Time{}, r)
	if r.err != nil && c.Request().Context().Err() == nil {
		s.log.Error().Err(r.err).Str("clip", m).Msg("export: reading a source failed mid-answer")
	}
	return nil
}

// manifestURL is the manifest route of an export (of its activity cut,
// when the request asked for one).
func manifestURL(camera string, r export.Range, asked url.Values) string {
	q := url.Values{}
	q.Set("from", r.From.UTC().Format(time.RFC3339Nano))
	q.Set("to", r.To.UTC().Format(time.RFC3339Nano))
	for _, k := range []string{"activity", "pad", "feed"} {
		if v := asked.Get(k); v != "" {
			q.Set(k, v)
		}
	}
	return "/api/v1/cameras/" + url.PathEscape(camera) + "/export/manifest?" + q.Encode()
}

func (s *Server) cameraExportManifest(c echo.Context) error {
	clip, err := s.clip(c)
	if clip == nil {
		return err
	}
	defer clip.Close()
	m, err := clip.Manifest(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

// readErr remembers a read error other than the end of the clip.
type readErr struct {
	r   io.ReadSeeker
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

func (r *readErr) Seek(off int64, whence int) (int64, error) { return r.r.Seek(off, whence) }
