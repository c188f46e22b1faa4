package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/export"
)

// Interval is a stretch of activity as the API shows it.
type Interval struct {
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Peak is the time of its strongest frame; Level that frame's changed
	// share of the picture (0-1).
	Peak  time.Time `json:"peak"`
	Level float64   `json:"level"`
}

// maxIntervals bounds one answer; beyond it, "truncated" says so (ask a
// shorter range).
const maxIntervals = 10000

func (s *Server) activityRoutes(v1 *echo.Group) {
	if s.deps.Activity == nil {
		return
	}
	v1.GET("/cameras/:name/activity", s.cameraActivity)
	v1.GET("/activity", s.allActivity)
}

func (s *Server) cameraActivity(c echo.Context) error {
	name := c.Param("name")
	if _, err := s.deps.Supervisor.Status(name); err != nil {
		return err
	}
	return s.activity(c, []string{name})
}

func (s *Server) allActivity(c echo.Context) error {
	var names []string
	for _, st := range s.deps.Supervisor.Statuses() {
		names = append(names, st.Camera)
	}
	return s.activity(c, names)
}

// activity answers the intervals of cameras overlapping [from, to), by
// start (RFC 3339); without from, since the beginning, without to, up to
// now.
func (s *Server) activity(c echo.Context, cameras []string) error {
	from, to, err := timeRange(c)
	if err != nil {
		return err
	}
	if from.IsZero() {
		from = minTime
	}
	if to.IsZero() {
		to = maxTime
	}
	out := []Interval{}
	for _, cam := range cameras {
		// Each camera's first maxIntervals+1 are all the answer can
		// hold: a wide range does not load a camera's every interval.
		ivs, err := s.deps.Activity(c.Request().Context(), cam, from, to, maxIntervals+1)
		if err != nil {
			return err
		}
		for _, iv := range ivs {
			out = append(out, interval(iv))
		}
	}
	slices.SortStableFunc(out, func(a, b Interval) int { return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Camera, b.Camera)) })
	truncated := len(out) > maxIntervals
	if truncated {
		out = out[:maxIntervals]
	}
	return c.JSON(http.StatusOK, map[string]any{"intervals": out, "truncated": truncated})
}

func interval(iv catalog.ActivityInterval) Interval {
	return Interval{Camera: iv.Camera, Start: iv.Start, End: iv.End, Peak: iv.Peak, Level: iv.Level}
}

// DefaultExportPad and MaxExportPad: how much footage an export cut to the
// activity keeps before and after each interval (pad=), by default and
// at most.
const (
	DefaultExportPad = 10 * time.Second
	MaxExportPad     = 10 * time.Minute
)

// activityCut reads an export's activity=1 and pad= (a Go duration such
// as 10s): the windows of the activity in [from, to), or nil without
// activity=1. A range without activity is a 404 saying so.
func (s *Server) activityCut(c echo.Context, camera string, from, to time.Time) (*export.ManifestWindows, error) {
	switch c.QueryParam("activity") {
	case "", "0", "false":
		if c.QueryParam("pad") != "" {
			return nil, apiError(http.StatusBadRequest, "pad needs activity=1")
		}
		return nil, nil
	case "1", "true":
	default:
		return nil, apiError(http.StatusBadRequest, "activity must be 1 (cut the export to the activity in the range) or 0")
	}
	if s.deps.Activity == nil {
		return nil, apiError(http.StatusBadRequest, "this server keeps no activity index")
	}
	pad := DefaultExportPad
	if v := c.QueryParam("pad"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxExportPad {
			return nil, apiError(http.StatusBadRequest, fmt.Sprintf("pad must be a duration from 0s to %s, such as 10s", MaxExportPad))
		}
		pad = d
	}
	ivs, err := s.deps.Activity(c.Request().Context(), camera, from.Add(-pad), to.Add(pad), 0)
	if err != nil {
		return nil, err
	}
	var rs []export.Range
	for _, iv := range ivs {
		rs = append(rs, export.Range{From: iv.Start, To: iv.End})
	}
	ws := export.Windows(rs, pad, from, to)
	if len(ws) == 0 {
		return nil, apiError(http.StatusNotFound, "no activity between from and to")
	}
	return &export.ManifestWindows{By: export.CutActivity, PadSeconds: pad.Seconds(), Windows: ws, Note: export.NoteActivity}, nil
}
