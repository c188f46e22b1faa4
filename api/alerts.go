package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/alerts"
)

// Alerts is what the API needs of the alerts: their view and a test
// event.
type Alerts interface {
	View(limit int) alerts.View
	Test() (alerts.Event, []string, error)
}

// alertRoutes: GET /api/v1/alerts (open conditions, recent events with
// their deliveries, targets) and POST /api/v1/alerts/test.
func (s *Server) alertRoutes(v1 *echo.Group) {
	v1.GET("/alerts", s.listAlerts)
	v1.POST("/alerts/test", s.testAlert, s.sameOrigin)
}

func (s *Server) listAlerts(c echo.Context) error {
	if s.deps.Alerts == nil {
		return notRunning(c)
	}
	limit := 50
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return apiError(http.StatusBadRequest, "limit must be a whole number from 1 to 500")
		}
		limit = n
	}
	v := s.deps.Alerts.View(limit)
	// Masked once more: what reaches a person holds no secret.
	for i := range v.Open {
		v.Open[i].Message = s.deps.Redactor.String(v.Open[i].Message)
	}
	for i := range v.Events {
		v.Events[i].Event.Message = s.deps.Redactor.String(v.Events[i].Event.Message)
		for j := range v.Events[i].Deliveries {
			v.Events[i].Deliveries[j].LastError = s.deps.Redactor.String(v.Events[i].Deliveries[j].LastError)
		}
	}
	for i := range v.Targets {
		v.Targets[i].LastError = s.deps.Redactor.String(v.Targets[i].LastError)
	}
	return c.JSON(http.StatusOK, v)
}

// TestResult is POST /api/v1/alerts/test's answer.
type TestResult struct {
	ID      string   `json:"id"`
	Targets []string `json:"targets"`
}

func (s *Server) testAlert(c echo.Context) error {
	if s.deps.Alerts == nil {
		return notRunning(c)
	}
	ev, targets, err := s.deps.Alerts.Test()
	if errors.Is(err, alerts.ErrNoTargets) {
		return apiError(http.StatusConflict, err.Error())
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, TestResult{ID: ev.ID, Targets: targets})
}

// notRunning answers 503 (the error handler keeps 5xx for failures).
func notRunning(c echo.Context) error {
	return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "the alerts are not running"})
}
