package api

import (
	"bytes"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/web"
)

// pageRoutes serve the page on the box (package web): "/" and its files
// under /ui/. They need no token: the page holds no data; it asks the API,
// with the token the operator types in.
func (s *Server) pageRoutes(e *echo.Echo) {
	e.GET("/", s.page)
	e.GET("/ui/:file", s.pageFile)
}

func (s *Server) page(c echo.Context) error {
	a, ok := web.Lookup(web.IndexName)
	if !ok {
		return apiError(http.StatusNotFound, "this build has no page")
	}
	return serveAsset(c, a)
}

func (s *Server) pageFile(c echo.Context) error {
	a, ok := web.Lookup(c.Param("file"))
	if !ok {
		return apiError(http.StatusNotFound, "no such file")
	}
	return serveAsset(c, a)
}

// serveAsset serves a file of the page under its Content-Security-Policy,
// revalidated on every load (an upgraded cctvd serves its new page at
// once), 304 when the browser has it.
func serveAsset(c echo.Context, a web.Asset) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, a.ContentType)
	h.Set("ETag", a.ETag)
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set(echo.HeaderContentSecurityPolicy, web.ContentSecurityPolicy)
	h.Set(echo.HeaderXContentTypeOptions, "nosniff")
	h.Set(echo.HeaderXFrameOptions, "DENY")
	h.Set(echo.HeaderReferrerPolicy, "no-referrer")
	http.ServeContent(c.Response(), c.Request(), a.Name, time.Time{}, bytes.NewReader(a.Body))
	return nil
}
