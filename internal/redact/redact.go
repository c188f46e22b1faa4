// Package redact removes secrets from text before it is logged, kept or
// served: camera passwords, the AWS secret key, the API token and the
// secrets an operator declares.
//
// Two rules, because a secret can only be masked as a substring when it is
// long enough not to match ordinary text:
//
//   - A secret of MinSubstringLen characters or more is masked wherever it
//     appears, in every encoding it is likely to take on the way (as is,
//     percent-encoded as in a URL, JSON-escaped as in a log line, base64).
//   - A shorter one (a camera shipped with "12345") is masked only where it
//     stands as a credential: a URL's userinfo password, a whole path
//     segment or query value of a URL. Masking "12345" everywhere would
//     corrupt log lines (`"pid":***`) and turn every message that contains
//     a number into an oracle for guessing the password.
//
// Whatever the secrets, text in a credential position is always masked: the
// password in any URL's userinfo, the values of query parameters named like
// credentials (password, token, key, signature...) and the value of an
// Authorization header.
//
// Masking never breaks a JSON log line: when a substring mask would, the
// line is masked token by token instead (see Writer).
package redact

import (
	"bytes"
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

// MinSubstringLen is the length from which a secret is masked wherever it
// appears; shorter ones are masked only where they stand as credentials.
const MinSubstringLen = 8

// Redactor removes a set of secrets. The zero value and nil remove only
// credentials in credential positions. It is safe for concurrent use, and
// Add extends it in place, so every holder of the pointer masks the secrets
// of a reloaded config.
type Redactor struct {
	mu       sync.RWMutex
	secrets  []string
	replacer *strings.Replacer
	forms    []string        // every masked form of the long secrets, longest first
	short    map[string]bool // short secrets and their escaped forms
}

var (
	// userinfoRe matches the password in scheme://user:password@host, up
	// to the last '@' before the host, so that an unescaped '@' in a
	// password is covered too.
	userinfoRe = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'"]*:)[^\s/'"]*@`)
	// credParamRe matches the value of a query parameter named like a
	// credential, in a URL or a query string.
	credParamRe = regexp.MustCompile(`(?i)([?&;](?:` + strings.Join(credentialParams, "|") + `)=)[^&;\s"'#<>\\]+`)
	// authHeaderRe matches the credential of an Authorization header.
	authHeaderRe = regexp.MustCompile(`(?i)(authorization\s*[:=]\s*"?(?:basic|bearer|token)\s+)[A-Za-z0-9._~+/=-]+`)
	// digestResponseRe matches the proof in a Digest Authorization header:
	// not the password, but enough to guess a short one offline.
	digestResponseRe = regexp.MustCompile(`(?i)(\bresponse\s*=\s*"?)[0-9a-f]{32,128}`)
	// urlRe finds URLs in free text, for short secrets in their segments.
	urlRe = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>\\]+`)
)

// credentialParams are the names of query parameters whose values are
// credentials.
var credentialParams = []string{"password", "passwd", "pass", "pwd", "passphrase", "token", "access_token",
	"auth", "auth_token", "authkey", "apikey", "api_key", "key", "secret", "signature", "sig",
	"x-amz-signature", "x-amz-credential", "x-amz-security-token", "streamkey", "stream_key"}

// IsCredentialParam reports whether a query parameter of this name carries
// a credential (password, token, key, signature...), case-insensitively.
func IsCredentialParam(name string) bool {
	return slices.Contains(credentialParams, strings.ToLower(name))
}

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
	r.replacer, r.forms, r.short = build(r.secrets)
}

// IsShort reports whether s is too short to be masked as a substring.
func IsShort(s string) bool { return len(s) < MinSubstringLen }

func build(secrets []string) (*strings.Replacer, []string, map[string]bool) {
	var forms []string
	short := map[string]bool{}
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
		if IsShort(s) {
			for _, f := range escapes(s) {
				short[f] = true
			}
			continue
		}
		for _, f := range escapes(s) {
			add(f)
			add(jsonEscape(f))
			add(strings.ToLower(f)) // %2f as well as %2F
		}
		add(base64.StdEncoding.EncodeToString([]byte(s)))
	}
	if len(forms) == 0 {
		return nil, nil, short
	}
	// Longest first, so a secret that contains another is masked whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Mask)
	}
	return strings.NewReplacer(pairs...), forms, short
}

// escapes are the forms a secret takes in a URL.
func escapes(s string) []string {
	return []string{
		s,
		url.QueryEscape(s),
		url.PathEscape(s),
		strings.TrimPrefix(url.UserPassword("", s).String(), ":"), // escaped as a password
		strings.ReplaceAll(url.QueryEscape(s), "+", "%20"),
	}
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	s = credentials(s)
	if r == nil {
		return s
	}
	r.mu.RLock()
	rep, short := r.replacer, r.short
	r.mu.RUnlock()
	if len(short) > 0 {
		s = maskShort(s, short)
	}
	if rep != nil {
		s = rep.Replace(s)
	}
	return s
}

// credentials masks what stands in a credential position, whatever the
// secrets are.
func credentials(s string) string {
	if strings.Contains(s, "://") {
		s = userinfoRe.ReplaceAllString(s, "${1}"+Mask+"@")
	}
	if strings.Contains(s, "=") {
		s = credParamRe.ReplaceAllString(s, "${1}"+Mask)
		s = digestResponseRe.ReplaceAllString(s, "${1}"+Mask)
	}
	if strings.Contains(s, "uthorization") || strings.Contains(s, "UTHORIZATION") {
		s = authHeaderRe.ReplaceAllString(s, "${1}"+Mask)
	}
	return s
}

// maskShort masks short secrets where they are a whole path segment or
// query value of a URL in s.
func maskShort(s string, short map[string]bool) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlRe.ReplaceAllStringFunc(s, func(u string) string {
		rest, frag, _ := strings.Cut(u, "#")
		path, query, hasQuery := strings.Cut(rest, "?")
		segs := strings.Split(path, "/")
		changed := false
		for i := 3; i < len(segs); i++ { // after scheme:, "" and the authority
			if short[segs[i]] {
				segs[i], changed = Mask, true
			}
		}
		var params []string
		if hasQuery {
			params = strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' })
			for i, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if ok && short[v] {
					params[i], changed = k+"="+Mask, true
				}
			}
		}
		if !changed {
			return u
		}
		out := strings.Join(segs, "/")
		if hasQuery {
			out += "?" + strings.Join(params, "&")
		}
		if frag != "" {
			out += "#" + frag
		}
		return out
	})
}

// StringCut masks s, the head of a text cut short, such as a line cut at a
// length limit: besides every secret, it masks an ending that is the
// beginning of a secret, whose rest was cut off.
func (r *Redactor) StringCut(s string) string {
	s = r.String(s)
	if r == nil {
		return s
	}
	r.mu.RLock()
	forms := r.forms
	r.mu.RUnlock()
	cut := 0 // the longest ending that begins a secret
	for _, f := range forms {
		for k := min(len(f)-1, len(s)); k > cut; k-- {
			if strings.HasSuffix(s, f[:k]) {
				cut = k
				break
			}
		}
	}
	if cut == 0 {
		return s
	}
	return s[:len(s)-cut] + Mask
}

// Error returns err's text with every secret masked.
func (r *Redactor) Error(err error) string {
	if err == nil {
		return ""
	}
	return r.String(err.Error())
}

// JSONLine masks a log line. A line that is a JSON value stays one: when
// masking substrings would break it (a secret inside a number, a mask
// splitting an escape), it is masked value by value instead, and a number
// or literal holding a secret becomes the string "***".
func (r *Redactor) JSONLine(p []byte) []byte {
	out := r.String(string(p))
	if out == string(p) {
		return p
	}
	trimmed := bytes.TrimSpace(p)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') || json.Valid([]byte(out)) || !json.Valid(trimmed) {
		return []byte(out)
	}
	return r.maskJSON(p)
}

// maskJSON masks a valid JSON text token by token.
func (r *Redactor) maskJSON(p []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(p))
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(p) && p[j] != '"' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			j++ // the closing quote
			var s string
			raw := string(p[i:j])
			switch err := json.Unmarshal(p[i:j], &s); {
			case err != nil:
				out.WriteString(`"` + Mask + `"`)
			case r.String(s) != s:
				out.Write(encodeString(r.String(s)))
			case r.String(raw) != raw: // a secret only in the escaped form
				out.WriteString(`"` + Mask + `"`)
			default:
				out.WriteString(raw)
			}
			i = j
		case strings.IndexByte("{}[],: \t\r\n", c) >= 0:
			out.WriteByte(c)
			i++
		default: // a number, true, false or null
			j := i
			for j < len(p) && strings.IndexByte("{}[],: \t\r\n\"", p[j]) < 0 {
				j++
			}
			if tok := string(p[i:j]); r.String(tok) != tok {
				out.WriteString(`"` + Mask + `"`)
			} else {
				out.WriteString(tok)
			}
			i = j
		}
	}
	return out.Bytes()
}

func encodeString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(b.Bytes(), "\n")
}

func jsonEscape(s string) string {
	b := encodeString(s)
	return string(b[1 : len(b)-1])
}

// Writer masks secrets in everything written through it to W. Each Write
// is masked on its own: zerolog and the line writers in this program write
// whole lines, so a secret is never split across two writes. A JSON line
// stays valid JSON. It passes zerolog's levels on when W is a
// zerolog.LevelWriter.
type Writer struct {
	r *Redactor
	w io.Writer
}

// NewWriter returns a Writer that masks with r and writes to w.
func NewWriter(r *Redactor, w io.Writer) *Writer { return &Writer{r: r, w: w} }

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	if _, err := w.w.Write(w.r.JSONLine(p)); err != nil {
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
	if _, err := lw.WriteLevel(l, w.r.JSONLine(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
