package activity

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A segment's activity in its S3 object's user metadata, so that the
// bucket alone knows it (a catalog rebuilt from S3 reads it back):
//
//	activity:         v1 s=0.125 n=600 i=1.5-7/3:0.041,61-64.25/62:0.013
//	activity-heatmap: the 256 heatmap bytes, base64url without padding
//
// s is the score, n the frames analysed, i the intervals as seconds from
// the segment's start (start-end/peak:level, to the hundredth of a second).
// S3 allows 2 KB of user metadata per object, keys and values together:
// MaxMetaLen bounds the activity value, which merges the nearest intervals
// (their union, the stronger peak) until it fits; the heatmap takes 342
// bytes.
const (
	MetaKey        = "activity"
	MetaHeatmapKey = "activity-heatmap"
	// MaxMetaLen bounds the activity value (about 40 intervals).
	MaxMetaLen = 1024
)

const metaVersion = "v1"

// FormatMeta returns a summary's two metadata values.
func FormatMeta(s Summary) (act, heatmap string) {
	ivls := slices.Clone(s.Intervals)
	for {
		act = formatAct(s, ivls)
		if len(act) <= MaxMetaLen || len(ivls) < 2 {
			break
		}
		ivls = mergeNearest(ivls)
	}
	return act, base64.RawURLEncoding.EncodeToString(s.Heatmap[:])
}

func formatAct(s Summary, ivls []Interval) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s s=%s n=%d", metaVersion, strconv.FormatFloat(math.Round(s.Score*1000)/1000, 'f', -1, 64), s.Frames)
	if len(ivls) > 0 {
		b.WriteString(" i=")
		for i, iv := range ivls {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s-%s/%s:%s", secs(iv.Start), secs(iv.End), secs(iv.Peak),
				strconv.FormatFloat(math.Round(iv.Level*1000)/1000, 'f', -1, 64))
		}
	}
	return b.String()
}

// mergeNearest joins the two neighbouring intervals with the shortest
// time between them.
func mergeNearest(ivls []Interval) []Interval {
	best := 0
	for i := 1; i < len(ivls)-1; i++ {
		if ivls[i+1].Start-ivls[i].End < ivls[best+1].Start-ivls[best].End {
			best = i
		}
	}
	a, b := ivls[best], ivls[best+1]
	m := Interval{Start: min(a.Start, b.Start), End: max(a.End, b.End), Peak: a.Peak, Level: a.Level}
	if b.Level > a.Level {
		m.Peak, m.Level = b.Peak, b.Level
	}
	return slices.Replace(ivls, best, best+2, m)
}

func secs(d time.Duration) string {
	return strconv.FormatFloat(math.Round(d.Seconds()*100)/100, 'f', -1, 64)
}

// ErrMeta marks metadata that is not a summary.
var ErrMeta = errors.New("activity metadata")

// ParseMeta reads what FormatMeta wrote; heatmap may be empty.
func ParseMeta(act, heatmap string) (Summary, error) {
	var s Summary
	fields := strings.Fields(act)
	if len(fields) == 0 || fields[0] != metaVersion {
		return s, fmt.Errorf("%w: not %s", ErrMeta, metaVersion)
	}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "s":
			s.Score, err = strconv.ParseFloat(v, 64)
			if err == nil && (s.Score < 0 || s.Score > 1) {
				err = errors.New("out of range")
			}
		case "n":
			s.Frames, err = strconv.Atoi(v)
		case "i":
			s.Intervals, err = parseIntervals(v)
		}
		if err != nil {
			return Summary{}, fmt.Errorf("%w: %s: %v", ErrMeta, k, err)
		}
	}
	if heatmap != "" {
		b, err := base64.RawURLEncoding.DecodeString(heatmap)
		if err != nil || len(b) != Cells {
			return Summary{}, fmt.Errorf("%w: heatmap is not %d bytes of base64url", ErrMeta, Cells)
		}
		copy(s.Heatmap[:], b)
	}
	return s, nil
}

func parseIntervals(v string) ([]Interval, error) {
	var out []Interval
	for _, p := range strings.Split(v, ",") {
		se, pl, ok1 := strings.Cut(p, "/")
		st, en, ok2 := strings.Cut(se, "-")
		pk, lv, ok3 := strings.Cut(pl, ":")
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("bad interval %q", p)
		}
		var iv Interval
		var err error
		for _, x := range []struct {
			s string
			d *time.Duration
		}{{st, &iv.Start}, {en, &iv.End}, {pk, &iv.Peak}} {
			f, perr := strconv.ParseFloat(x.s, 64)
			if perr != nil || f < 0 || f > 1e7 {
				err = fmt.Errorf("bad time %q", x.s)
				break
			}
			*x.d = time.Duration(math.Round(f*100)) * 10 * time.Millisecond
		}
		if err != nil {
			return nil, err
		}
		if iv.Level, err = strconv.ParseFloat(lv, 64); err != nil || iv.Level < 0 || iv.Level > 1 {
			return nil, fmt.Errorf("bad level %q", lv)
		}
		if iv.End < iv.Start {
			return nil, fmt.Errorf("interval %q ends before it starts", p)
		}
		out = append(out, iv)
	}
	return out, nil
}
