package api

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/uploader"
)

// UploadLimit is the upload cap as the API shows and changes it.
type UploadLimit interface {
	Status() uploader.LimitStatus
	// SetOverride sets the cap for this run (Mbit/s, 0: none); nil
	// returns to the config and its schedule.
	SetOverride(mbps *float64)
}

// LimitResult is GET and PUT /api/v1/uploader/limit's answer: the cap in
// force, and what a PUT does to it.
type LimitResult struct {
	uploader.LimitStatus
	Note string `json:"note"`
}

// limitNote says that the API's cap lasts only this run.
const limitNote = "a cap set here holds until cctvd restarts or a reload changes s3Config's cap or schedule; it is not written to the config file"

func (s *Server) uploaderRoutes(v1 *echo.Group) {
	if s.deps.UploadLimit == nil {
		return
	}
	v1.GET("/uploader/limit", s.getLimit)
	v1.PUT("/uploader/limit", s.putLimit, s.sameOrigin)
}

func (s *Server) getLimit(c echo.Context) error {
	return c.JSON(http.StatusOK, LimitResult{LimitStatus: s.deps.UploadLimit.Status(), Note: limitNote})
}

// errLimitBody is every bad PUT's answer: it names the shape, never the
// input.
const errLimitBody = `the body must be JSON {"maxUploadMbps": N}, N from 0 to 100000 Mbit/s (0: no cap), or {"maxUploadMbps": null} to return to the config`

func (s *Server) putLimit(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, 1<<10+1))
	if err != nil || len(body) > 1<<10 {
		return apiError(http.StatusBadRequest, errLimitBody)
	}
	var in struct {
		MaxUploadMbps *float64 `json:"maxUploadMbps"`
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if json.Unmarshal(body, &raw) != nil || len(raw) != 1 || raw["maxUploadMbps"] == nil || dec.Decode(&in) != nil || dec.More() {
		return apiError(http.StatusBadRequest, errLimitBody)
	}
	if v := in.MaxUploadMbps; v != nil && (math.IsNaN(*v) || *v < 0 || *v > config.MaxUploadMbps) {
		return apiError(http.StatusUnprocessableEntity, errLimitBody)
	}
	s.deps.UploadLimit.SetOverride(in.MaxUploadMbps)
	return c.JSON(http.StatusOK, LimitResult{LimitStatus: s.deps.UploadLimit.Status(), Note: limitNote})
}
