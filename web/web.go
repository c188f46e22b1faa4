// Package web is the page cctvd serves at "/": plain HTML, CSS and
// JavaScript modules embedded in the binary, with no build step and
// nothing fetched from the network, so it works on a box without internet.
// The page holds no data and no secret: it asks the REST API for
// everything, with the bearer token the operator types in, which it keeps
// for the browser tab only.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"strings"
	"sync"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the page's: its own scripts, styles, images and
// media only (and blob: URLs, the stills and clips it fetches with the
// token), no plugins, no framing, no other origin.
const ContentSecurityPolicy = "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Asset is one file of the page.
type Asset struct {
	Name        string
	ContentType string
	// ETag is a strong validator of Body (a hash of it), quoted.
	ETag string
	Body []byte
}

// types are the content types of the page's files, by extension.
var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// IndexName is the page itself, served at "/".
const IndexName = "index.html"

var assets = sync.OnceValue(func() map[string]Asset {
	out := map[string]Asset{}
	entries, err := fs.ReadDir(static, "static")
	if err != nil {
		panic("web: the embedded files cannot be read: " + err.Error()) // a broken build
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := static.ReadFile("static/" + e.Name())
		if err != nil {
			panic("web: the embedded files cannot be read: " + err.Error())
		}
		sum := sha256.Sum256(body)
		out[e.Name()] = Asset{Name: e.Name(), ContentType: types[path.Ext(e.Name())], ETag: `"` + hex.EncodeToString(sum[:12]) + `"`, Body: body}
	}
	return out
})

// Lookup returns the file name of the page (a name under /ui/, without
// folders), and whether there is one.
func Lookup(name string) (Asset, bool) {
	if strings.ContainsAny(name, `/\`) {
		return Asset{}, false
	}
	a, ok := assets()[name]
	return a, ok && a.ContentType != ""
}

// Names lists the page's files.
func Names() []string {
	var out []string
	for n := range assets() {
		out = append(out, n)
	}
	return out
}
