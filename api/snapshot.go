package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/snapshot"
)

// Snapshots is what the API needs of camera stills.
type Snapshots interface {
	// Get returns the camera's still from the segment being written, or
	// its newest closed segment on disk; snapshot.ErrNoSegment when it has
	// neither.
	Get(ctx context.Context, camera string) (snapshot.Image, error)
}

// cameraSnapshot serves a camera's still: a JPEG of the newest keyframe of
// the segment being written, or of the last second of its newest closed
// segment on disk (never from the camera), the same one until a newer
// keyframe or segment; 304 when the client has it.
func (s *Server) cameraSnapshot(c echo.Context) error {
	name := c.Param("name")
	known, err := s.knownCamera(c.Request().Context(), name)
	if err != nil {
		return err
	}
	if !known {
		return apiError(http.StatusNotFound, "no camera by that name, configured or recorded")
	}
	src, err := s.feedSource(c, name)
	if err != nil {
		return err
	}
	img, err := s.deps.Snapshots.Get(c.Request().Context(), src)
	if err != nil && c.Request().Context().Err() != nil {
		return nil // the client left while waiting: nothing to answer, nothing wrong
	}
	if errors.Is(err, snapshot.ErrNoSegment) {
		return apiError(http.StatusNotFound, "the camera has no closed segment on this box")
	}
	if err != nil {
		return err
	}
	sum := sha256.Sum256(img.JPEG)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "image/jpeg")
	h.Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	h.Set(echo.HeaderCacheControl, "private, no-cache")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf("inline; filename=%q", strings.TrimSuffix(img.Segment, ".mp4")+".jpg"))
	h.Set("X-Segment", img.Segment)
	if img.Open {
		h.Set("X-Segment-Open", "true") // the segment being written: X-Segment is its file in staging
	}
	http.ServeContent(c.Response(), c.Request(), "", img.At, bytes.NewReader(img.JPEG))
	return nil
}
