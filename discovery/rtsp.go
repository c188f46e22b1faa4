package discovery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/internal/digestauth"
)

// Description is what a camera answered to DESCRIBE.
type Description struct {
	// Status is the RTSP status of the last answer (200, 401, 404...).
	Status int
	// Video says the SDP has a video stream; Codec is its encoding name
	// from a=rtpmap ("H264", "H265", "JPEG"), if given.
	Video bool
	Codec string
	// Server is the camera's Server header.
	Server string
	// Authenticated says credentials were sent (the camera asked).
	Authenticated bool
}

// describe sends an RTSP DESCRIBE for u (no credentials in it) and answers
// one authentication challenge (Digest per RFC 2617/7616, or Basic) with
// user and password. It does not retry a refusal, except once for a
// stale Digest nonce: a camera that refuses correct-looking credentials
// has a wrong password, and each further try counts toward its lockout.
func describe(ctx context.Context, u *url.URL, user, password string, timeout time.Duration) (Description, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", dialAddr(u))
	if err != nil {
		return Description{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return Description{}, err
	}
	r := bufio.NewReader(io.LimitReader(conn, maxConversation)) // a camera cannot make us read without end
	uri := u.String()
	var desc Description
	var authz string
	nc := 0
	for cseq := 1; cseq <= 3; cseq++ {
		req := "DESCRIBE " + uri + " RTSP/1.0\r\nCSeq: " + strconv.Itoa(cseq) +
			"\r\nAccept: application/sdp\r\nUser-Agent: cctvd\r\n"
		if authz != "" {
			req += "Authorization: " + authz + "\r\n"
		}
		_, err := io.WriteString(conn, req+"\r\n")
		var status int
		var hdr textproto.MIMEHeader
		var body []byte
		if err == nil {
			status, hdr, body, err = readResponse(r)
		}
		if err != nil {
			if desc.Authenticated && closed(err) {
				// Closed after its challenge without saying so.
				return describeAgain(ctx, u, authz, timeout, desc)
			}
			return desc, err
		}
		desc.Status, desc.Server = status, hdr.Get("Server")
		if status == 200 {
			desc.Video, desc.Codec = videoIn(body)
			return desc, nil
		}
		if status != 401 {
			return desc, nil
		}
		chs := digestauth.Parse(hdr.Values("Www-Authenticate"))
		ch, ok := digestauth.Pick(chs)
		switch {
		case desc.Authenticated && !(ok && ch.Stale()):
			return desc, nil // refused the answer: wrong credentials
		case user == "" && password == "":
			return desc, nil // asks for credentials we do not have
		case !ok:
			return desc, fmt.Errorf("rtsp: the camera asks for an authentication this client does not know (%s)", schemes(chs))
		}
		nc++
		if authz, err = ch.Authorization("DESCRIBE", uri, user, password, nc); err != nil {
			return desc, fmt.Errorf("rtsp: %w", err)
		}
		desc.Authenticated = true
		if strings.EqualFold(hdr.Get("Connection"), "close") {
			return describeAgain(ctx, u, authz, timeout, desc)
		}
	}
	return desc, nil
}

// describeAgain sends the answered DESCRIBE on a new connection, for a
// camera that closed the first after its challenge.
func describeAgain(ctx context.Context, u *url.URL, authz string, timeout time.Duration, desc Description) (Description, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", dialAddr(u))
	if err != nil {
		return desc, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return desc, err
	}
	req := "DESCRIBE " + u.String() + " RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\nUser-Agent: cctvd\r\nAuthorization: " + authz + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return desc, err
	}
	status, hdr, body, err := readResponse(bufio.NewReader(io.LimitReader(conn, maxConversation)))
	if err != nil {
		return desc, err
	}
	desc.Status, desc.Server = status, hdr.Get("Server")
	if status == 200 {
		desc.Video, desc.Codec = videoIn(body)
	}
	return desc, nil
}

// dialAddr is u's host and port, RTSP's default port when it has none.
func dialAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "554"
	if u.Scheme == "rtsps" {
		port = "322"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// closed says the camera closed the connection.
func closed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func schemes(chs []digestauth.Challenge) string {
	var s []string
	for _, c := range chs {
		s = append(s, c.Scheme)
	}
	if len(s) == 0 {
		return "no WWW-Authenticate"
	}
	return strings.Join(s, ", ")
}

// maxSDP bounds a DESCRIBE body.
const maxSDP = 64 << 10

// maxConversation bounds all that is read from one connection (three
// answers at most, each headers and an SDP): what answers on a camera's
// address may be anything, and an endless header must not fill the
// daemon's memory.
const maxConversation = 512 << 10

// errProtocol marks an answer that is not RTSP.
var errProtocol = errors.New("not an RTSP answer")

func readResponse(r *bufio.Reader) (int, textproto.MIMEHeader, []byte, error) {
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, nil, err
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "RTSP/") || err != nil {
		return 0, nil, nil, fmt.Errorf("%w: %.40q", errProtocol, line)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: headers: %v", errProtocol, err)
	}
	var body []byte
	if cl := hdr.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(strings.TrimSpace(cl))
		if err != nil || n < 0 || n > maxSDP {
			return 0, nil, nil, fmt.Errorf("%w: Content-Length %q", errProtocol, cl)
		}
		body = make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return 0, nil, nil, err
		}
	}
	return status, hdr, body, nil
}

// videoIn reads an SDP: is there a video stream, and its encoding name.
func videoIn(sdp []byte) (bool, string) {
	video, codec := false, ""
	inVideo := false
	fmts := map[string]bool{}
	for _, line := range strings.Split(string(sdp), "\n") {
		line = strings.TrimSpace(line)
		if m, ok := strings.CutPrefix(line, "m="); ok {
			f := strings.Fields(m)
			inVideo = len(f) > 0 && f[0] == "video"
			if inVideo && !video {
				video = true
				for _, pt := range f[min(3, len(f)):] {
					fmts[pt] = true
				}
			}
			continue
		}
		if a, ok := strings.CutPrefix(line, "a=rtpmap:"); ok && inVideo && codec == "" {
			pt, enc, _ := strings.Cut(a, " ")
			if fmts[pt] {
				codec, _, _ = strings.Cut(enc, "/")
				codec = strings.ToUpper(codec)
			}
		}
	}
	return video, codec
}
