// Package redact removes secrets from text before it is logged, kept or
// served: camera passwords, the AWS secret key and the API token, in every
// encoding they are likely to take on the way (as is, percent-encoded as in
// a URL, JSON-escaped as in a log line, base64 as in a Basic auth header),
// plus the password part of any URL's userinfo.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

// Mask replaces what is removed.
const Mask = "***"

// Redactor removes a set of secrets. The zero value and nil remove only
// URL passwords. It is safe for concurrent use, and Add extends it in place,
// so every holder of the pointer masks the secrets of a reloaded config.
type Redactor struct {
	mu       sync.RWMutex
	secrets  []string
	replacer *strings.Replacer
}

// userinfoRe matches the password in scheme://user:password@host, up to the
// last '@' before the host, so that an unescaped '@' in a password is
// covered too.
var userinfoRe = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'"]*:)[^\s/'"]*@`)

// New returns a Redactor for these secrets. Empty strings are ignored.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add masks more secrets from now on; the earlier ones stay masked.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, secrets...)
	r.replacer = replacer(r.secrets)
}

func replacer(secrets []string) *strings.Replacer {
	var forms []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			forms = append(forms, s)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, f := range []string{
			s,
			url.QueryEscape(s),
			url.PathEscape(s),
			url.UserPassword("", s).String()[1:], // ":" + escaped password
			strings.ReplaceAll(url.QueryEscape(s), "+", "%20"),
		} {
			f = strings.TrimPrefix(f, ":")
			add(f)
			add(jsonEscape(f))
			add(strings.ToLower(f)) // %2f as well as %2F
		}
		add(base64.StdEncoding.EncodeToString([]byte(s)))
	}
	if len(forms) == 0 {
		return nil
	}
	// Longest first, so a secret that contains another is masked whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Mask)
	}
	return strings.NewReplacer(pairs...)
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	s = userinfoRe.ReplaceAllString(s, "${1}"+Mask+"@")
	if r == nil {
		return s
	}
	r.mu.RLock()
	rep := r.replacer
	r.mu.RUnlock()
	if rep != nil {
		s = rep.Replace(s)
	}
	return s
}

// Error returns err's text with every secret masked.
func (r *Redactor) Error(err error) string {
	if err == nil {
		return ""
	}
	return r.String(err.Error())
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// Writer masks secrets in everything written through it to W. Each Write
// is masked on its own: zerolog and the line writers in this program write
// whole lines, so a secret is never split across two writes. It passes
// zerolog's levels on when W is a zerolog.LevelWriter.
type Writer struct {
	r *Redactor
	w io.Writer
}

// NewWriter returns a Writer that masks with r and writes to w.
func NewWriter(r *Redactor, w io.Writer) *Writer { return &Writer{r: r, w: w} }

func (w *Writer) mask(p []byte) []byte {
	if out := w.r.String(string(p)); out != string(p) {
		return []byte(out)
	}
	return p
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	if _, err := w.w.Write(w.mask(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteLevel implements zerolog.LevelWriter.
func (w *Writer) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	lw, ok := w.w.(zerolog.LevelWriter)
	if !ok {
		return w.Write(p)
	}
	if _, err := lw.WriteLevel(l, w.mask(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
