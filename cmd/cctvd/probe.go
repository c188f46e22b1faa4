package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/discovery"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/onvif"
)

// PasswordEnv is read by probe-camera when --password is not given, so the
// password stays out of the process list and the shell's history.
const PasswordEnv = "CCTVD_CAMERA_PASSWORD"

var resolutionArg = regexp.MustCompile(`^([0-9]+)x([0-9]+)$`)

// probeCamera is `cctvd probe-camera`: what the camera offers (ONVIF
// profiles, stream URIs with the password masked, or the known path that
// answers) and what cctvd would record from it.
func probeCamera(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("probe-camera", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ip := fs.String("ip", "", "camera address (required)")
	port := fs.Int("port", config.DefaultRTSPPort, "camera's RTSP port")
	onvifPort := fs.Int("onvif-port", config.DefaultONVIFPort, "camera's ONVIF (HTTP) port")
	user := fs.String("user", "", "user name")
	password := fs.String("password", "", "password (or the environment variable "+PasswordEnv+")")
	res := fs.String("resolution", "", "resolution to record, WIDTHxHEIGHT (chooses the ONVIF profile)")
	fps := fs.Float64("fps", 0, "frame rate to record (chooses the ONVIF profile)")
	method := fs.String("discovery", discovery.MethodAuto, "auto (ONVIF, then known paths), onvif or paths")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of each ONVIF call and RTSP exchange")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cctvd probe-camera: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *password == "" {
		*password = getenv(PasswordEnv)
	}
	t := discovery.Target{Host: *ip, RTSPPort: *port, ONVIFPort: *onvifPort, User: *user, Password: *password, FPS: *fps, Method: *method}
	var problems []string
	if *ip == "" {
		problems = append(problems, "--ip is required")
	}
	if *res != "" {
		m := resolutionArg.FindStringSubmatch(*res)
		if m == nil {
			problems = append(problems, fmt.Sprintf("--resolution %q is not WIDTHxHEIGHT", *res))
		} else {
			t.Width, _ = strconv.Atoi(m[1])
			t.Height, _ = strconv.Atoi(m[2])
		}
	}
	if (*res == "") != (*fps == 0) || *fps < 0 {
		problems = append(problems, "--resolution and --fps go together (both or neither)")
	}
	switch *method {
	case discovery.MethodAuto, discovery.MethodONVIF, discovery.MethodPaths:
	default:
		problems = append(problems, fmt.Sprintf("--discovery %q is not auto, onvif or paths", *method))
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "cctvd probe-camera: %s\n", strings.Join(problems, "; "))
		return errUsage
	}

	red := redact.New(*password)
	out := &redactingWriter{w: stdout, red: red}
	mask := func(uri string) string { return maskURL(uri, *user) }
	f := discovery.New(discovery.Config{Timeout: *timeout})
	fmt.Fprintf(out, "camera %s (RTSP port %d, ONVIF port %d)\n", *ip, *port, *onvifPort)

	var found discovery.Found
	var err error
	if *method != discovery.MethodPaths {
		var rep discovery.ONVIFReport
		found, rep, err = f.ONVIF(ctx, t)
		printONVIF(out, rep, err, mask)
		if err == nil {
			printChoice(out, found, t, mask)
			return nil
		}
		if *method == discovery.MethodONVIF || ctx.Err() != nil {
			return fmt.Errorf("no stream found: %s", printable(red.String(err.Error())))
		}
	}
	fmt.Fprintf(out, "\nknown paths (DESCRIBE; %d at once, then one every %s, so the camera does not lock this address out):\n",
		discovery.DefaultPathBurst, discovery.DefaultPathInterval)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	found, err = f.Paths(ctx, t, func(a discovery.Attempt) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Path, a.Vendor, attemptResult(a))
		tw.Flush()
	})
	tw.Flush()
	if err != nil {
		return fmt.Errorf("no stream found: %s", printable(red.String(err.Error())))
	}
	printChoice(out, found, t, mask)
	return nil
}

func attemptResult(a discovery.Attempt) string {
	d := a.Result
	switch {
	case a.Err == nil:
		s := "200, video"
		if d.Codec != "" {
			s += " " + printable(d.Codec)
		}
		return s
	case d.Status != 0:
		s := fmt.Sprintf("%d", d.Status)
		if d.Status == 401 && d.Authenticated {
			s += ", credentials refused"
		}
		if d.Status == 200 {
			s += ", no video"
		}
		return s
	}
	return printable(a.Err.Error())
}

func printONVIF(out io.Writer, rep discovery.ONVIFReport, err error, mask func(string) string) {
	fmt.Fprintf(out, "\nONVIF %s\n", printable(rep.DeviceURL))
	if rep.Info.Manufacturer != "" || rep.Info.Model != "" {
		fmt.Fprintf(out, "  device    %s %s (firmware %s)\n", printable(rep.Info.Manufacturer), printable(rep.Info.Model), printable(rep.Info.FirmwareVersion))
	}
	if rep.Profiles != nil || rep.ClockOffset != 0 {
		fmt.Fprintf(out, "  clock     %s\n", clockText(rep.ClockOffset))
	}
	if len(rep.Profiles) > 0 {
		fmt.Fprintln(out, "  profiles")
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, p := range rep.Profiles {
			uri := rep.URIs[p.Token]
			switch {
			case p.Encoding == "":
				uri = "(no video)"
			case uri == "":
				uri = "(no URI: " + rep.URIErrors[p.Token] + ")"
			default:
				uri = mask(uri)
			}
			fps := "?"
			if p.FPS > 0 {
				fps = strconv.FormatFloat(p.FPS, 'f', -1, 64)
			}
			fmt.Fprintf(tw, "    %s\ttoken %s\t%s %dx%d at %s fps\t%s\n", printable(p.Name), printable(p.Token), printable(p.Encoding),
				p.Width, p.Height, fps, printable(uri))
		}
		tw.Flush()
	}
	if err != nil {
		fmt.Fprintf(out, "  failed    %s\n", printable(err.Error()))
	}
}

func clockText(off time.Duration) string {
	a := off.Abs().Round(time.Second)
	switch {
	case a < 2*time.Second:
		return "in step with this machine"
	case off > 0:
		return fmt.Sprintf("%s ahead of this machine (digests are dated in the camera's time)", a)
	}
	return fmt.Sprintf("%s behind this machine (digests are dated in the camera's time)", a)
}

func printChoice(out io.Writer, found discovery.Found, t discovery.Target, mask func(string) string) {
	fmt.Fprintf(out, "\ncctvd would record %s\n  %s\n", printable(found.Source), printable(mask(found.URI)))
	switch {
	case t.Width == 0:
		if found.Choice != nil {
			fmt.Fprintf(out, "  %s (give --resolution and --fps to choose as the daemon would)\n", printable(found.Choice.Why))
		}
	case found.Choice != nil:
		fmt.Fprintf(out, "  mode auto: %s\n", printable(found.Choice.Why))
	default:
		codec := printable(found.Codec)
		if codec == "" {
			codec = "the stream"
		}
		fmt.Fprintf(out, "  mode auto: decided when recording starts (ffprobe): copy if %s is H.264/H.265 at %dx%d and at most %s fps, else transcode\n",
			codec, t.Width, t.Height, strconv.FormatFloat(t.FPS, 'f', -1, 64))
	}
}

// maskURL puts user:*** in a URL's userinfo: what ffmpeg would be given,
// with the password masked.
func maskURL(uri, user string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	u.User = nil
	s := u.String()
	if user == "" {
		return s
	}
	scheme, rest, _ := strings.Cut(s, "://")
	return scheme + "://" + url.User(user).String() + ":" + redact.Mask + "@" + rest
}

// redactingWriter masks secrets in everything written through it, and
// escapes what a terminal would act on but the layout's newlines and
// tabs: a backstop behind printable on every field a device filled.
type redactingWriter struct {
	w   io.Writer
	red *redact.Redactor
}

func (r *redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, escapeText(r.red.String(string(p)), true)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// discover is `cctvd discover`: a WS-Discovery probe, and the devices that
// answer.
func discover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("discover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	iface := fs.String("interface", "", "network interface to probe on (default: the system's choice)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for answers")
	to := fs.String("to", "", "probe one device by unicast, host:port (default: multicast "+onvif.DiscoveryAddr+")")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cctvd discover: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "cctvd discover: --timeout must be positive")
		return errUsage
	}
	found, err := onvif.Probe(ctx, onvif.ProbeConfig{Interface: *iface, Addr: *to, Timeout: *timeout})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	where := "the network"
	if *iface != "" {
		where = *iface
	}
	if *to != "" {
		where = *to
	}
	if len(found) == 0 {
		fmt.Fprintf(stdout, "no ONVIF device answered on %s within %s\n", where, *timeout)
		return nil
	}
	fmt.Fprintf(stdout, "%d ONVIF device(s) answered on %s:\n", len(found), where)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  address\tname\thardware\tdevice service\tendpoint")
	for _, d := range found {
		// What devices say is printed as text, never as terminal controls.
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", printable(d.From), dash(printable(d.Name)), dash(printable(d.Hardware)),
			dash(printable(strings.Join(d.XAddrs, " "))), printable(d.Endpoint))
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nthen: cctvd probe-camera --ip ADDRESS --user USER (password in "+PasswordEnv+")")
	return err
}

// printable is text a device sent (names, codecs, URIs, the errors its
// answers fill) as a terminal shows it rather than acts on it: each
// character escapeText names is written as its Go escape, newlines and
// tabs too, so a device can neither drive the operator's terminal nor
// forge a line or a column of the output.
func printable(s string) string { return escapeText(s, false) }

// escapeText writes each control character (C0, DEL, C1: ESC and CSI
// start the sequences that retitle a window or rewrite the screen),
// format character (bidi overrides and isolates reorder what is shown,
// zero-width ones hide text), line or paragraph separator and byte that
// is not UTF-8 as its Go escape (\x1b, \u009b, \u202e, \xff). layout
// keeps newlines and tabs, for output whose own lines and columns they
// are.
func escapeText(s string, layout bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case layout && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
			q := strconv.QuoteRune(r) // '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
