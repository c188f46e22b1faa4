package main

import (
	"bufio"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cctvd/cctvd/internal/onvifsim"
)

// hostileRTSP is a stand-in for a hostile camera's RTSP server (no real
// camera here sends terminal controls): it answers every DESCRIBE with
// 200 and an SDP whose video codec name carries escape sequences (set the
// window title, clear the screen).
func hostileRTSP(t *testing.T, codec string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 " + codec + "/90000\r\n"
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				tp := textproto.NewReader(bufio.NewReader(conn))
				for {
					if _, err := tp.ReadLine(); err != nil {
						return
					}
					hdr, err := tp.ReadMIMEHeader()
					if err != nil {
						return
					}
					resp := "RTSP/1.0 200 OK\r\nCSeq: " + hdr.Get("Cseq") + "\r\nContent-Type: application/sdp\r\nContent-Length: " +
						strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
					if _, err := conn.Write([]byte(resp)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// assertTerminalSafe fails on any character a terminal would act on
// rather than show: C0 controls but the newline, DEL, C1 controls,
// format characters (bidi overrides and isolates), line and paragraph
// separators, bytes that are not UTF-8.
func assertTerminalSafe(t *testing.T, what, s string) {
	t.Helper()
	for i, r := range s {
		bad := r == utf8.RuneError || (unicode.IsControl(r) && r != '\n') ||
			unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
		if bad {
			t.Errorf("%s holds %U at byte %d: %q", what, r, i, s[max(0, i-20):min(len(s), i+20)])
		}
	}
}

func TestProbeCameraEscapesDeviceText(t *testing.T) {
	const codec = "H264\x1b]0;owned\a\x1b[2J"
	port := hostileRTSP(t, codec)
	d, err := onvifsim.Start(onvifsim.Config{User: "admin", Password: "x",
		Manufacturer: "Evil\u009b2J\u202e", Model: "\u2066cam\nfake line",
		Profiles: []onvifsim.Profile{
			{Token: "P1\u009b", Name: "main\u202eStr\u0085eam", Encoding: "H264", Width: 640, Height: 360, FPS: 5,
				URI: "rtsp://127.0.0.1:" + strconv.Itoa(port) + "/main\u009b"},
			{Token: "P2", Name: "sub\u200fStream", Encoding: "H264", Width: 320, Height: 180, FPS: 5,
				URI: "rtsp://127.0.0.1:" + strconv.Itoa(port) + "/sub\n\u2028"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)

	out, stderr, err := runCLI(t, nil, "probe-camera", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--onvif-port", strconv.Itoa(d.Port()), "--user", "admin", "--password", "x", "--discovery", "onvif")
	t.Logf("onvif output:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	assertTerminalSafe(t, "the ONVIF output", out+stderr)
	for _, want := range []string{`Evil\u009b2J\u202e \u2066cam\nfake line`, `main\u202eStr\u0085eam`, `token P1\u009b`, `sub\u200fStream`} {
		if !strings.Contains(out, want) {
			t.Errorf("the ONVIF output lacks %q, the device's text made visible", want)
		}
	}

	out, stderr, err = runCLI(t, nil, "probe-camera", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--user", "admin", "--password", "x", "--discovery", "paths", "--resolution", "640x360", "--fps", "5")
	t.Logf("paths output:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	assertTerminalSafe(t, "the known-path output", out+stderr)
	if want := `H264\x1b]0;OWNED\a\x1b[2J`; strings.Count(out, want) < 2 {
		t.Errorf("the known-path output lacks %q twice (the attempt and the choice)", want)
	}
}

func TestEscapeText(t *testing.T) {
	tests := []struct {
		in     string
		layout bool
		want   string
	}{
		{"Hikvision DS-2CD2043", false, "Hikvision DS-2CD2043"},
		{"caméra 東京", false, "caméra 東京"},
		{"a\x1b[31mred", false, `a\x1b[31mred`},
		{"\x9b2J", false, `\x9b2J`}, // a C1 byte that is not UTF-8
		{"\u009b2J\u0085", false, `\u009b2J\u0085`},
		{"evil\u202egpj.exe\u2066\u2069\u200b", false, `evil\u202egpj.exe\u2066\u2069\u200b`},
		{"line\nforged\tcolumn\r\u2028", false, `line\nforged\tcolumn\r\u2028`},
		{"line\n\tcell\x07", true, "line\n\tcell\\a"},
		{"\x7f\x00", false, `\x7f\x00`},
	}
	for _, tt := range tests {
		if got := escapeText(tt.in, tt.layout); got != tt.want {
			t.Errorf("escapeText(%q, %v) = %q, want %q", tt.in, tt.layout, got, tt.want)
		}
	}
}
