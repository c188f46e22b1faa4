package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/export"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/supervisor"
)

// A camera with a subStream has two feeds: the camera's JSON gains
// "feeds" (each feed's state and how far back it reaches, on the box and
// in S3); one without keeps its shape. POST /cameras/{name}/upload sends
// the main feed of a range ahead of everything else (an incident).

// Feed is one feed of a camera.
type Feed struct {
	// Feed is "main" or "sub"; FeedID its videoFeedId.
	Feed   string `json:"feed"`
	FeedID string `json:"feedId"`
	// State, Since and LastError are its run's (the main feed's are the
	// camera's own).
	State     supervisor.StateName `json:"state"`
	Since     time.Time            `json:"since"`
	LastError string               `json:"lastError,omitempty"`
	// Local is the start of its oldest footage on the box, Remote of its
	// oldest in S3, Newest the end of its newest (absent: none).
	Local  time.Time `json:"local,omitzero"`
	Remote time.Time `json:"remote,omitzero"`
	Newest time.Time `json:"newest,omitzero"`
}

// SubSupervisor is what the API reads of a camera's sub feed.
type SubSupervisor interface {
	SubStatus(name string) (supervisor.Status, bool)
}

// FeedCatalog is what the API reads of the feeds in the catalog.
type FeedCatalog interface {
	Reach(ctx context.Context, camera string) ([]catalog.FeedReach, error)
	LatestFeed(ctx context.Context, camera, feedID string) (catalog.Record, error)
	AddUploadRequest(ctx context.Context, camera string, from, to time.Time) (catalog.UploadRequest, error)
	UploadRequests(ctx context.Context, since time.Time) ([]catalog.UploadRequest, error)
}

// feeds fills cam's feeds, for a camera with a sub feed.
func (s *Server) feeds(ctx context.Context, cam *Camera, main supervisor.Status) {
	ss, ok := s.deps.Supervisor.(SubSupervisor)
	if !ok {
		return
	}
	sub, ok := ss.SubStatus(main.Camera)
	if !ok {
		return
	}
	cam.Feeds = []Feed{
		{Feed: config.FeedMain, FeedID: cam.Config.VideoFeedID, State: main.State, Since: main.Since, LastError: cam.LastError},
		{Feed: config.FeedSub, FeedID: sub.FeedID, State: sub.State, Since: sub.Since, LastError: s.deps.Redactor.String(sub.LastError)},
	}
	fc, ok := s.deps.Catalog.(FeedCatalog)
	if !ok {
		return
	}
	if last, err := fc.LatestFeed(ctx, main.Camera, cam.Config.VideoFeedID); err == nil { // the main feed's, as before
		r := recording(last)
		cam.LastSegment = &r
	}
	reach, err := fc.Reach(ctx, main.Camera)
	if err != nil {
		return
	}
	for i := range cam.Feeds {
		for _, r := range reach {
			if r.FeedID == cam.Feeds[i].FeedID {
				cam.Feeds[i].Local, cam.Feeds[i].Remote, cam.Feeds[i].Newest = r.Local, r.Remote, r.Newest
			}
		}
	}
}

func (s *Server) feedRoutes(g *echo.Group) {
	g.POST("/cameras/:name/upload", s.requestUpload, s.sameOrigin)
	g.GET("/uploads/requests", s.uploadRequests)
}

// requestUpload records a request to send the camera's main feed over
// from..to ahead of everything else: 202 with the request, kept across a
// restart. The range is bounded like an export's (api.maxExportRange) and
// may not end more than a minute in the future.
func (s *Server) requestUpload(c echo.Context) error {
	fc, ok := s.deps.Catalog.(FeedCatalog)
	if !ok {
		return apiError(http.StatusNotImplemented, "this catalog keeps no upload requests")
	}
	name, from, to, err := s.exportRange(c)
	if err != nil {
		return err
	}
	if to.After(s.deps.Now().Add(time.Minute)) {
		return apiError(http.StatusBadRequest, "to is in the future: ask for footage recorded (or being recorded) now")
	}
	req, err := fc.AddUploadRequest(c.Request().Context(), name, from, to)
	switch {
	case errors.Is(err, catalog.ErrTooManyRequests):
		return apiError(http.StatusTooManyRequests, fmt.Sprintf("%d upload requests are open already: wait for one to finish", catalog.MaxOpenUploadRequests))
	case errors.Is(err, catalog.ErrUnavailable):
		return apiError(http.StatusServiceUnavailable, "the catalog is not available yet: try again shortly")
	case err != nil:
		s.log.Error().Err(err).Msg("cannot record an upload request")
		return apiError(http.StatusInternalServerError, "cannot record the upload request")
	}
	if s.deps.UploadWake != nil {
		s.deps.UploadWake()
	}
	return c.JSON(http.StatusAccepted, req)
}

// uploadRequests lists the open requests and those done in the last day.
func (s *Server) uploadRequests(c echo.Context) error {
	fc, ok := s.deps.Catalog.(FeedCatalog)
	if !ok {
		return apiError(http.StatusNotImplemented, "this catalog keeps no upload requests")
	}
	rs, err := fc.UploadRequests(c.Request().Context(), s.deps.Now().Add(-24*time.Hour))
	if errors.Is(err, catalog.ErrUnavailable) {
		return apiError(http.StatusServiceUnavailable, "the catalog is not available yet: try again shortly")
	} else if err != nil {
		return err
	}
	if rs == nil {
		rs = []catalog.UploadRequest{}
	}
	return c.JSON(http.StatusOK, map[string]any{"requests": rs})
}

// FeedExporter is an Exporter that exports one feed of a camera with a
// sub feed (export.FeedMain, export.FeedSub, or the best copy).
type FeedExporter interface {
	// ClipCutFeed is Exporter's ClipCut of one feed (cut nil: the whole
	// range).
	ClipCutFeed(ctx context.Context, camera string, from, to time.Time, cut *export.ManifestWindows, feed string) (*export.Clip, error)
}

// exportPart is one part of a range whose best copy is of both feeds:
// its own export and manifest.
type exportPart struct {
	export.Part
	Export   string `json:"export"`
	Manifest string `json:"manifest"`
}

// mixedParts is the 300 answer to an export whose best copy is of both
// feeds, which never go into one MP4: each part is an export of its own.
func mixedParts(camera string, m *export.MixedError) map[string]any {
	parts := make([]exportPart, len(m.Parts))
	for i, p := range m.Parts {
		r := export.Range{From: p.From, To: p.To}
		man := manifestURL(camera, r, url.Values{"feed": {p.Feed}})
		parts[i] = exportPart{Part: p, Manifest: man, Export: strings.Replace(man, "/export/manifest?", "/export?", 1)}
	}
	return map[string]any{
		"error": "the range's best copy is of two feeds (the main feed's, and the sub feed's where the main copy is gone), " +
			"which never go into one MP4: export each part",
		"parts": parts,
	}
}

// feedSource is the staging name a live view or still of the camera reads
// (?feed=main|sub): the sub feed's when the camera has one (cheaper for a
// grid), unless the main is asked for; the camera's own otherwise.
func (s *Server) feedSource(c echo.Context, camera string) (string, error) {
	feed := c.QueryParam("feed")
	if feed != "" && feed != config.FeedMain && feed != config.FeedSub {
		return "", apiError(http.StatusBadRequest, "feed is main or sub (absent: the sub feed when the camera has one)")
	}
	hasSub := false
	if ss, ok := s.deps.Supervisor.(SubSupervisor); ok {
		_, hasSub = ss.SubStatus(camera)
	}
	switch {
	case feed == config.FeedSub && !hasSub:
		return "", apiError(http.StatusNotFound, "the camera has no sub feed (cameras[].subStream)")
	case feed == config.FeedMain, !hasSub:
		return camera, nil
	}
	return layout.FeedStagingName(camera, config.FeedSub), nil
}
