package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
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
		{"credential query parameters", "from 'rtsp://10.0.0.1/live?channel=1&token=abc.DEF-1&pwd=x%40y;key=k'",
			"from 'rtsp://10.0.0.1/live?channel=1&token=***&pwd=***;key=***'"},
		{"credential parameter names in any case", "http://h/a?PassWord=zz&User=u", "http://h/a?PassWord=***&User=u"},
		{"s3 presigned signature", "https://b.s3/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abcd", "https://b.s3/k?X-Amz-Credential=***&X-Amz-Signature=***"},
		{"authorization header", `Authorization: Bearer t0k.en+/=`, `Authorization: Bearer ***`},
		{"authorization header in JSON", `{"header":"authorization: Basic YWRtaW46MTIzNDU="}`, `{"header":"authorization: Basic ***"}`},
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
	log := zerolog.New(NewWriter(New("hunter2-long"), lw))
	log.Warn().Str("url", "rtsp://a:hunter2-long@h/").Msg("hunter2-long leaked?")
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

// TestShortSecrets: a secret shorter than MinSubstringLen is masked only
// where it stands as a credential, so log lines stay intact and no
// message becomes an oracle for it.
func TestShortSecrets(t *testing.T) {
	r := New("12345", "level", "k3y")
	tests := []struct {
		name, in, want string
	}{
		{"a JSON log line is untouched", `{"level":"info","pid":12345,"message":"level up"}`, `{"level":"info","pid":12345,"message":"level up"}`},
		{"a number in a message is untouched", "limit must be 1 to 1000, not 12345", "limit must be 1 to 1000, not 12345"},
		{"URL userinfo", "from 'rtsp://admin:12345@10.0.0.1:554/'", "from 'rtsp://admin:***@10.0.0.1:554/'"},
		{"URL path segment (RTMP stream key)", "Input #0, flv, from 'rtmp://10.0.0.1/live/k3y':", "Input #0, flv, from 'rtmp://10.0.0.1/live/***':"},
		{"URL query value", "rtsp://10.0.0.1/x?channel=1&s=12345", "rtsp://10.0.0.1/x?channel=1&s=***"},
		{"a host name is not a segment", "http://level/12345x", "http://level/12345x"},
		{"a part of a segment is not the secret", "rtmp://h/live/123456", "rtmp://h/live/123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestJSONLinesStayJSON: masking a long secret that sits inside a number
// or straddles an escape keeps the line valid JSON, secret masked.
func TestJSONLinesStayJSON(t *testing.T) {
	r := New("1234567890", `u00e9abcdef`)
	for _, in := range []string{
		`{"level":"info","bytes":123456789012,"message":"ok"}` + "\n",
		`{"message":"caf\u00e9abcdef"}` + "\n",
		`{"a":[1,true,null,{"b":"x1234567890y"}]}`,
	} {
		out := r.JSONLine([]byte(in))
		if !json.Valid(out) {
			t.Errorf("%s -> invalid JSON %s", in, out)
		}
		if strings.Contains(string(out), "1234567890") || strings.Contains(string(out), "u00e9abcdef") {
			t.Errorf("%s -> secret kept: %s", in, out)
		}
		if !strings.Contains(string(out), Mask) {
			t.Errorf("%s -> nothing masked: %s", in, out)
		}
	}
	// Text that is not JSON is masked as text.
	if got := string(r.JSONLine([]byte("n=1234567890\n"))); got != "n=***\n" {
		t.Errorf("plain line: %q", got)
	}
}

// TestStringCut: the head of a line cut in the middle of a secret does not
// carry the secret's beginning.
func TestStringCut(t *testing.T) {
	secret := strings.Repeat("Zq9", 700) // a 2100-character password
	r := New(secret)
	line := "[info] Input #0, rtsp, from 'rtsp://u:" + secret + "@h/'"
	for _, cut := range []int{30, 40, 41, 100, 2048, len(line) - 5} {
		got := r.StringCut(line[:cut])
		if strings.Contains(got, "Zq9Z") {
			t.Errorf("cut at %d kept part of the secret: %q", cut, got[:min(len(got), 80)])
		}
	}
	if got := r.StringCut("nothing secret here"); got != "nothing secret here" {
		t.Errorf("got %q", got)
	}
}

// TestDigestResponseIsMasked: a Digest Authorization's response proves the
// password; from it a short one can be guessed offline.
func TestDigestResponseIsMasked(t *testing.T) {
	in := `Authorization: Digest username="admin", realm="cam", nonce="abc", uri="/live", response="6629fae49393a05397450978507c4ef1"`
	out := New().String(in)
	if strings.Contains(out, "6629fae49393a05397450978507c4ef1") || !strings.Contains(out, `response="`+Mask) {
		t.Errorf("String = %q", out)
	}
}
