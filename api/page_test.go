package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/web"
)

// TestPage: the page and its files are served without the token (they
// hold no data) under the page's Content-Security-Policy, revalidated with
// their ETag; a file that is not the page's is a JSON 404; the Host
// allow-list applies to the page too, and lets loopback names and
// addresses through (the page opened as http://127.0.0.1:PORT/ or
// http://localhost:PORT/).
func TestPage(t *testing.T) {
	s := mustNew(t, Config{Listen: "127.0.0.1:8080", Settings: Settings{Token: "tok-tok-tok-tok-1"}}, Deps{Log: zerolog.Nop()})
	do := func(path, host string, header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Host = host
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	files := append([]string{"/"}, func() []string {
		var out []string
		for _, n := range web.Names() {
			out = append(out, "/ui/"+n)
		}
		return out
	}()...)
	if len(files) < 6 {
		t.Fatalf("the page has %d files: %v", len(files), files)
	}
	for _, host := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080"} {
		for _, p := range files {
			rec := do(p, host, nil)
			h := rec.Header()
			if rec.Code != 200 || rec.Body.Len() == 0 {
				t.Fatalf("%s (Host %s): %d", p, host, rec.Code)
			}
			if h.Get("Content-Security-Policy") != web.ContentSecurityPolicy || h.Get("X-Content-Type-Options") != "nosniff" ||
				h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" || h.Get("Content-Type") == "" {
				t.Errorf("%s: headers %v", p, h)
			}
			if again := do(p, host, map[string]string{"If-None-Match": h.Get("ETag")}); again.Code != http.StatusNotModified {
				t.Errorf("%s with its ETag: %d, want 304", p, again.Code)
			}
		}
	}
	if ct := do("/", "127.0.0.1:8080", nil).Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("/: Content-Type %q", ct)
	}
	if ct := do("/ui/app.js", "127.0.0.1:8080", nil).Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("app.js: Content-Type %q (a module needs a JavaScript type)", ct)
	}
	for _, p := range []string{"/ui/nope.js", "/ui/..%2Fweb.go", "/ui/"} {
		rec := do(p, "127.0.0.1:8080", nil)
		if rec.Code != 404 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || strings.Contains(rec.Body.String(), "nope") {
			t.Errorf("%s: %d %s %q", p, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		}
	}
	if rec := do("/", "evil.example:8080", nil); rec.Code != http.StatusForbidden {
		t.Errorf("the page for a rebound name: %d, want 403", rec.Code)
	}
	// The page is no way around the token.
	if rec := do("/api/v1/cameras", "127.0.0.1:8080", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("the API without the token: %d", rec.Code)
	}
}

// TestPageLoadsNothingFromElsewhere: no file of the page names another
// origin: it works on a box without internet.
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	for _, n := range web.Names() {
		a, _ := web.Lookup(n)
		body := string(a.Body)
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "fonts.googleapis"} {
			if i := strings.Index(body, bad); i >= 0 && !strings.HasPrefix(body[i:], "http://www.w3.org/2000/svg") {
				t.Errorf("%s names another origin: %q", n, body[max(0, i-20):min(len(body), i+40)])
			}
		}
		if strings.Contains(body, " style=\"") || strings.Contains(body, "<script>") || strings.Contains(body, "innerHTML") {
			t.Errorf("%s has inline style or script, or writes HTML: the CSP refuses the first two, the third is an injection risk", n)
		}
	}
}
