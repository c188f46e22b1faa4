package discovery

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cctvd/cctvd/onvif"
)

// Copyable says whether a stream can be recorded as it is (ffmpeg's copy
// mode) for a camera configured at w×h and fps: a codec MP4 holds (H.264
// or H.265), the configured size, at most the configured frame rate. codec
// is ffprobe's name (h264, hevc) or ONVIF's (H264, H265); why says what
// rules copying out.
func Copyable(codec string, width, height int, streamFPS float64, w, h int, fps float64) (bool, string) {
	switch {
	case !copyCodec(codec):
		return false, "its codec " + codec + " is not H.264 or H.265"
	case width != w || height != h:
		return false, fmt.Sprintf("it is %dx%d, not %dx%d", width, height, w, h)
	case streamFPS <= 0:
		return false, "its frame rate is unknown"
	case streamFPS > fps*1.01:
		return false, fmt.Sprintf("its %s fps is above the configured %s", num(streamFPS), num(fps))
	}
	return true, ""
}

func copyCodec(codec string) bool {
	switch strings.ToLower(codec) {
	case "h264", "avc", "hevc", "h265":
		return true
	}
	return false
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Choice is the profile chosen for a camera and how it would be recorded.
type Choice struct {
	Profile onvif.Profile
	// Copy: the profile is already what is configured, so mode auto
	// records it as it is.
	Copy bool
	// Why says why this profile, for people.
	Why string
}

// Choose picks the profile to record for a camera configured at w×h and
// fps (w = 0: nothing configured, the largest profile). It prefers a profile that can be recorded without transcoding (the
// highest frame rate among them); otherwise the least work to transcode
// from: the smallest profile at least as large as configured and at least
// as fast (the decoder's work grows with the pixels), and when no profile
// is that large, the largest. Ties go to H.264/H.265, then to the
// camera's order. ok is false when no profile has a video encoder.
func Choose(profiles []onvif.Profile, w, h int, fps float64) (Choice, bool) {
	type cand struct {
		p          onvif.Profile
		i          int
		copy       bool
		why        string
		coversSize bool
		coversFPS  bool
	}
	var cs []cand
	for i, p := range profiles {
		if p.Encoding == "" || p.Width <= 0 || p.Height <= 0 {
			continue
		}
		ok, why := Copyable(p.Encoding, p.Width, p.Height, p.FPS, w, h, fps)
		cs = append(cs, cand{p: p, i: i, copy: ok, why: why,
			coversSize: p.Width >= w && p.Height >= h,
			coversFPS:  p.FPS <= 0 || p.FPS >= fps*0.99})
	}
	if len(cs) == 0 {
		return Choice{}, false
	}
	area := func(p onvif.Profile) int { return p.Width * p.Height }
	if w == 0 {
		sort.SliceStable(cs, func(i, j int) bool {
			a, b := cs[i], cs[j]
			if area(a.p) != area(b.p) {
				return area(a.p) > area(b.p)
			}
			if ac, bc := copyCodec(a.p.Encoding), copyCodec(b.p.Encoding); ac != bc {
				return ac
			}
			return a.p.FPS > b.p.FPS
		})
		p := cs[0].p
		return Choice{Profile: p, Copy: copyCodec(p.Encoding),
			Why: fmt.Sprintf("%s %dx%d at %s fps: the largest profile", p.Encoding, p.Width, p.Height, fpsText(p.FPS))}, true
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.copy != b.copy {
			return a.copy
		}
		if a.copy { // both copyable: the closest to the configured rate
			return a.p.FPS > b.p.FPS
		}
		if a.coversSize != b.coversSize {
			return a.coversSize
		}
		if a.coversFPS != b.coversFPS {
			return a.coversFPS
		}
		if area(a.p) != area(b.p) {
			return (area(a.p) < area(b.p)) == a.coversSize
		}
		if ac, bc := copyCodec(a.p.Encoding), copyCodec(b.p.Encoding); ac != bc {
			return ac
		}
		if a.p.FPS != b.p.FPS {
			return (a.p.FPS < b.p.FPS) == a.coversFPS
		}
		return a.i < b.i
	})
	best := cs[0]
	ch := Choice{Profile: best.p, Copy: best.copy}
	desc := fmt.Sprintf("%s %dx%d at %s fps", best.p.Encoding, best.p.Width, best.p.Height, fpsText(best.p.FPS))
	switch {
	case best.copy:
		ch.Why = desc + " is what is configured: recorded as it is (copy)"
	case best.coversSize:
		ch.Why = desc + ", transcoded (" + best.why + "): the smallest profile at least the configured size"
	default:
		ch.Why = desc + ", transcoded (" + best.why + "): no profile is as large as configured, this is the largest"
	}
	return ch, true
}

// ChooseSub picks a camera's sub stream among its profiles: the one of
// the lowest resolution (ties: H.264/H.265, then the higher frame rate,
// then the camera's order), recorded as it is. ok is false when fewer than
// two profiles have video: the one there is is the main stream.
func ChooseSub(profiles []onvif.Profile) (Choice, bool) {
	var video []onvif.Profile
	for _, p := range profiles {
		if p.Encoding != "" && p.Width > 0 && p.Height > 0 {
			video = append(video, p)
		}
	}
	if len(video) < 2 {
		return Choice{}, false
	}
	sort.SliceStable(video, func(i, j int) bool {
		a, b := video[i], video[j]
		if a.Width*a.Height != b.Width*b.Height {
			return a.Width*a.Height < b.Width*b.Height
		}
		if ac, bc := copyCodec(a.Encoding), copyCodec(b.Encoding); ac != bc {
			return ac
		}
		return a.FPS > b.FPS
	})
	p := video[0]
	return Choice{Profile: p, Copy: copyCodec(p.Encoding),
		Why: fmt.Sprintf("%s %dx%d at %s fps: the lowest-resolution profile, the sub stream", p.Encoding, p.Width, p.Height, fpsText(p.FPS))}, true
}

func fpsText(f float64) string {
	if f <= 0 {
		return "?"
	}
	return num(f)
}
