package digestauth

import (
	"errors"
	"strings"
	"testing"
)

// The worked examples of RFC 2617 (section 3.5) and RFC 7616 (section 3.9.1).
func TestDigestRFCExamples(t *testing.T) {
	tests := []struct {
		name, header, password, cnonce, want string
	}{
		{"RFC 2617 MD5 qop=auth",
			`Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
			"Circle Of Life", "0a4f113b", "6629fae49393a05397450978507c4ef1"},
		{"RFC 7616 MD5",
			`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			"Circle of Life", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "8ca523f5e9506fed4657c9700eebdbec"},
		{"RFC 7616 SHA-256",
			`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			"Circle of Life", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chs := Parse([]string{tt.header})
			ch, ok := Pick(chs)
			if !ok {
				t.Fatalf("no challenge picked from %q", tt.header)
			}
			got, err := ch.digest("GET", "/dir/index.html", "Mufasa", tt.password, 1, tt.cnonce)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got, `response="`+tt.want+`"`) {
				t.Errorf("header %s\nwant response %s", got, tt.want)
			}
			for _, part := range []string{`qop=auth`, `nc=00000001`, `cnonce="` + tt.cnonce + `"`, `opaque="`, `uri="/dir/index.html"`} {
				if !strings.Contains(got, part) {
					t.Errorf("header %s lacks %s", got, part)
				}
			}
		})
	}
}

// RFC 2069 servers (GStreamer's RTSP server among them) offer no qop: the
// response is H(HA1:nonce:HA2) and the header carries no nc or cnonce.
func TestDigestWithoutQop(t *testing.T) {
	ch, _ := Pick(Parse([]string{`Digest realm="GStreamer RTSP Server", nonce="93f4ec072fe2040a"`}))
	got, err := ch.digest("DESCRIBE", "rtsp://127.0.0.1:8554/cam", "admin", "secret", 1, "x")
	if err != nil {
		t.Fatal(err)
	}
	// md5("admin:GStreamer RTSP Server:secret"), md5("DESCRIBE:rtsp://127.0.0.1:8554/cam"), then
	// md5(ha1:nonce:ha2), computed with md5sum.
	const want = "f8442290cda40587d5535cd5ebc75d17"
	if !strings.Contains(got, `response="`+want+`"`) {
		t.Errorf("header %s\nwant response %s", got, want)
	}
	if strings.Contains(got, "nc=") || strings.Contains(got, "cnonce") || strings.Contains(got, "qop") {
		t.Errorf("RFC 2069 answer carries qop fields: %s", got)
	}
	if !strings.HasPrefix(got, `Digest username="admin", realm="GStreamer RTSP Server", nonce="93f4ec072fe2040a", uri="rtsp://127.0.0.1:8554/cam", response="`) {
		t.Errorf("header %s", got)
	}
}

func TestPickPrefersTheStrongest(t *testing.T) {
	chs := Parse([]string{
		`Basic realm="cam"`,
		`Digest realm="cam", nonce="a", algorithm=MD5`,
		`Digest realm="cam", nonce="b", algorithm=SHA-256`,
		`Bearer realm="x"`,
	})
	ch, ok := Pick(chs)
	if !ok || ch.Params["nonce"] != "b" {
		t.Errorf("picked %+v, want the SHA-256 digest", ch)
	}
	ch, ok = Pick(Parse([]string{`Basic realm="cam"`}))
	if !ok || ch.Scheme != "basic" {
		t.Errorf("picked %+v, want basic", ch)
	}
	got, _ := ch.Authorization("DESCRIBE", "rtsp://h/x", "admin", "p@ss:w/rd", 1)
	if got != "Basic YWRtaW46cEBzczp3L3Jk" {
		t.Errorf("basic header %q", got)
	}
	if _, ok := Pick(Parse([]string{`Bearer realm="x"`, `Digest realm="x", nonce="n", algorithm=SHA-512-256`})); ok {
		t.Error("picked a challenge this package cannot answer")
	}
}

func TestParseQuotedValues(t *testing.T) {
	chs := Parse([]string{`Digest realm="a \"quoted\", realm", nonce="n1", stale=TRUE, qop="auth"`})
	if len(chs) != 1 {
		t.Fatalf("got %d challenges", len(chs))
	}
	p := chs[0].Params
	if p["realm"] != `a "quoted", realm` || p["nonce"] != "n1" || p["qop"] != "auth" {
		t.Errorf("params %q", p)
	}
	if !chs[0].Stale() {
		t.Error("stale=TRUE not seen")
	}
}

func TestUnsupported(t *testing.T) {
	for _, h := range []string{
		`Digest realm="r", nonce="n", qop="auth-int"`,
		`Digest realm="r", nonce="n", userhash=true`,
		`Digest realm="r"`,
	} {
		ch := Parse([]string{h})[0]
		if _, err := ch.Authorization("GET", "/", "u", "p", 1); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err %v, want ErrUnsupported", h, err)
		}
	}
}
