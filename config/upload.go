package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // s3Config.timeZone loads on a box without /usr/share/zoneinfo
)

// MaxUploadMbps bounds s3Config.maxUploadMbps and the windows' mbps (100 Gbit/s).
const MaxUploadMbps = 100000

// ParseClock reads a wall time "HH:MM" (00:00 to 24:00) as minutes since
// midnight.
func ParseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h, m := int(s[0]-'0')*10+int(s[1]-'0'), int(s[3]-'0')*10+int(s[4]-'0')
	if m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

func (s S3Config) validatePacing(v *validator) {
	mbps := func(field string, x float64) {
		if math.IsNaN(x) || x < 0 || x > MaxUploadMbps {
			v.add(field, "must be 0 to %d Mbit/s (got %s)", MaxUploadMbps, num(x))
		}
	}
	mbps("s3Config.maxUploadMbps", s.MaxUploadMbps)
	if s.TimeZone != "" {
		if _, err := time.LoadLocation(s.TimeZone); err != nil {
			v.add("s3Config.timeZone", "%q is not a time zone such as Europe/Paris", s.TimeZone)
		}
	}
	if s.UploadOrder != UploadOldest && s.UploadOrder != UploadNewest {
		v.add("s3Config.uploadOrder", "%q is not %s or %s", s.UploadOrder, UploadOldest, UploadNewest)
	}
	for i, w := range s.UploadSchedule {
		p := fmt.Sprintf("s3Config.uploadSchedule[%d]", i)
		for j, d := range w.Days {
			if !slices.Contains(WeekDays, strings.ToLower(d)) {
				v.add(fmt.Sprintf("%s.days[%d]", p, j), "%q is not one of %s", d, strings.Join(WeekDays, ", "))
			}
		}
		from, okFrom := ParseClock(w.From)
		if !okFrom || from == 24*60 {
			v.add(p+".from", "%q is not HH:MM", w.From)
		}
		to, okTo := ParseClock(w.To)
		if !okTo {
			v.add(p+".to", "%q is not HH:MM", w.To)
		}
		if okFrom && okTo && from == to {
			v.add(p+".to", "%q is the window's start: a window lasts at least a minute", w.To)
		}
		mbps(p+".mbps", w.Mbps)
	}
}
