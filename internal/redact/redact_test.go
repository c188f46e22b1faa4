package redact

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestString(t *testing.T) {
	const pw = `p@ss:/#%w"\rd`
	r := New(pw, "AWS/SECRET+key", "")
	escaped := url.UserPassword("admin", pw).String()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "password is " + pw + ".", "password is ***."},
		{"ffmpeg input line", "[info] Input #0, rtsp, from 'rtsp://" + escaped + "@127.0.0.1:8554/cam1':",
			"[info] Input #0, rtsp, from 'rtsp://admin:***@127.0.0.1:8554/cam1':"},
		{"lower-case percent-encoding", "rtsp://admin:" + strings.ToLower(url.QueryEscape(pw)) + "@h/", "rtsp://admin:***@h/"},
		{"query escape", "secret=" + url.QueryEscape(pw), "secret=***"},
		{"json-escaped in a log line", `{"msg":"` + `p@ss:/#%w\"\\rd` + `"}`, `{"msg":"***"}`},
		{"base64 basic auth", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(pw)), "Authorization: Basic ***"},
		{"aws key", "signing with AWS/SECRET+key", "signing with ***"},
		{"unknown url password", "rtsp://bob:hunter2@10.0.0.1:554/x", "rtsp://bob:***@10.0.0.1:554/x"},
		{"password with a bare @", "rtsp://bob:a@b@10.0.0.1/x", "rtsp://bob:***@10.0.0.1/x"},
		{"url without credentials untouched", "rtsp://10.0.0.1:554/x and http://h:80/a@b", "rtsp://10.0.0.1:554/x and http://h:80/a@b"},
		{"nothing secret", "frame=12 fps=2.0", "frame=12 fps=2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNilRedactorStillMasksURLPasswords(t *testing.T) {
	var r *Redactor
	if got := r.String("rtsp://u:pw@h/"); got != "rtsp://u:***@h/" {
		t.Errorf("got %q", got)
	}
}

func TestWriterPassesLevels(t *testing.T) {
	var buf bytes.Buffer
	lw := &levelRecorder{w: &buf}
	log := zerolog.New(NewWriter(New("hunter2"), lw))
	log.Warn().Str("url", "rtsp://a:hunter2@h/").Msg("hunter2 leaked?")
	if strings.Contains(buf.String(), "hunter2") {
		t.Fatalf("secret written: %s", buf.String())
	}
	if lw.level != zerolog.WarnLevel {
		t.Errorf("level = %v, want warn", lw.level)
	}
}

type levelRecorder struct {
	w     *bytes.Buffer
	level zerolog.Level
}

func (l *levelRecorder) Write(p []byte) (int, error) { return l.w.Write(p) }
func (l *levelRecorder) WriteLevel(lv zerolog.Level, p []byte) (int, error) {
	l.level = lv
	return l.w.Write(p)
}

func TestAddExtendsInPlace(t *testing.T) {
	r := New("old-secret")
	held := r // a component holding the pointer
	r.Add("new-secret")
	if got := held.String("old-secret new-secret"); got != "*** ***" {
		t.Errorf("got %q", got)
	}
}
