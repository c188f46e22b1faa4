package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestSecretLengthEdge: a secret of exactly MinSubstringLen is masked
// wherever it appears; one character shorter only where it stands as a
// credential.
func TestSecretLengthEdge(t *testing.T) {
	long := strings.Repeat("k", MinSubstringLen)
	short := long[1:]
	if IsShort(long) || !IsShort(short) {
		t.Fatalf("IsShort(%d chars) = %v, IsShort(%d chars) = %v", len(long), IsShort(long), len(short), IsShort(short))
	}
	if got := New(long).String("the key is " + long + "."); got != "the key is ***." {
		t.Errorf("a secret of %d characters in free text: %q", len(long), got)
	}
	if got := New(short).String("the key is " + short + "."); got != "the key is "+short+"." {
		t.Errorf("a short secret masked in free text: %q", got)
	}
}

// TestSecretInsideAnother: when one secret begins another, the longer is
// masked whole, whichever was given first.
func TestSecretInsideAnother(t *testing.T) {
	for _, order := range [][]string{{"01234567", "0123456789"}, {"0123456789", "01234567"}} {
		if got := New(order...).String("x0123456789y and 01234567z"); got != "x***y and ***z" {
			t.Errorf("secrets %q: %q", order, got)
		}
	}
}

// TestShortSecretInAURLWithAFragment: the fragment stays after the mask.
func TestShortSecretInAURLWithAFragment(t *testing.T) {
	r := New("12345")
	for in, want := range map[string]string{
		"rtsp://cam/live/12345#top":       "rtsp://cam/live/***#top",
		"rtsp://cam/live?pin=12345#top":   "rtsp://cam/live?pin=***#top",
		"rtsp://cam/live?a=1&b=12345":     "rtsp://cam/live?a=1&b=***",
		"rtsp://cam/live/123456#12345":    "rtsp://cam/live/123456#12345",
		"rtsp://12345/live":               "rtsp://12345/live", // the host is no credential
		"see rtsp://cam/12345 and /12345": "see rtsp://cam/*** and /12345",
	} {
		if got := r.String(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestError(t *testing.T) {
	r := New("s3cr3t-passw0rd")
	if got := r.Error(nil); got != "" {
		t.Errorf("Error(nil) = %q", got)
	}
	if got := r.Error(errors.New("dial: s3cr3t-passw0rd refused")); got != "dial: *** refused" {
		t.Errorf("Error = %q", got)
	}
}

// TestJSONValueByValue: lines where masking substrings would break the
// JSON are masked value by value, arrays as objects, strings with escapes
// kept, every other value as it was.
func TestJSONValueByValue(t *testing.T) {
	r := New("12345678", `pa"ss-w0rd`)
	for _, tt := range []struct{ in, want string }{
		{`[1234567890, 7, "ok"]`, `["***",7,"ok"]`},
		{`{"n":1234567890,"q":"say \"hi\" \\ there","t":true,"z":null,"f":1.5}`,
			`{"n":"***","q":"say \"hi\" \\ there","t":true,"z":null,"f":1.5}`},
		{`{"n":1234567890,"s":"a 12345678 b"}`, `{"n":"***","s":"a *** b"}`},
		// The secret holds a quote: in JSON it is only there escaped.
		{`{"n":1234567890,"s":"pa\"ss-w0rd"}`, `{"n":"***","s":"***"}`},
		{`{"n":1234567890, "list": [1, {"k": "v"}]}`, `{"n":"***","list":[1,{"k":"v"}]}`},
	} {
		got := string(r.JSONLine([]byte(tt.in)))
		if !json.Valid([]byte(got)) {
			t.Errorf("%s: not JSON: %s", tt.in, got)
			continue
		}
		var a, b any
		json.Unmarshal([]byte(got), &a)
		json.Unmarshal([]byte(tt.want), &b)
		if ga, _ := json.Marshal(a); string(ga) != mustMarshal(b) {
			t.Errorf("%s:\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
	// Text that is not a JSON object or array is masked as text.
	for in, want := range map[string]string{"1234567890": "***90", "": "", "  ": "  ", `"a 12345678"`: `"a ***"`} {
		if got := string(r.JSONLine([]byte(in))); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// levelWriter keeps each write with its level, or fails every write.
type levelWriter struct {
	bytes.Buffer
	levels []zerolog.Level
	fail   bool
}

func (w *levelWriter) Write(p []byte) (int, error) {
	if w.fail {
		return 0, errors.New("disk full")
	}
	return w.Buffer.Write(p)
}

func (w *levelWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	w.levels = append(w.levels, l)
	return w.Write(p)
}

// TestWriterCounts: a Writer reports the bytes it was given as written
// (not the masked count) and passes its target's failures on.
func TestWriterCounts(t *testing.T) {
	r := New("a-long-secret")
	line := []byte(`{"msg":"a-long-secret"}` + "\n")
	for _, tt := range []struct {
		name  string
		write func(w *Writer) (int, error)
	}{
		{"Write", func(w *Writer) (int, error) { return w.Write(line) }},
		{"WriteLevel", func(w *Writer) (int, error) { return w.WriteLevel(zerolog.WarnLevel, line) }},
	} {
		out := &levelWriter{}
		n, err := tt.write(NewWriter(r, out))
		if err != nil || n != len(line) || out.String() != `{"msg":"***"}`+"\n" {
			t.Errorf("%s: %d, %v, wrote %q", tt.name, n, err, out.String())
		}
		out.fail = true
		if n, err := tt.write(NewWriter(r, out)); err == nil || n != 0 {
			t.Errorf("%s to a failing writer: %d, %v", tt.name, n, err)
		}
	}
	// WriteLevel to a plain writer writes the masked line.
	var plain bytes.Buffer
	if n, err := NewWriter(r, &plain).WriteLevel(zerolog.InfoLevel, line); err != nil || n != len(line) || strings.Contains(plain.String(), "a-long-secret") {
		t.Errorf("WriteLevel to a plain writer: %d %v %q", n, err, plain.String())
	}
}
