package export

import (
	"slices"
	"testing"
	"time"
)

func TestWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 6, 14, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	r := func(a, b float64) Range { return Range{From: at(a), To: at(b)} }
	for _, tt := range []struct {
		name      string
		intervals []Range
		pad       time.Duration
		from, to  float64
		want      []Range
	}{
		{"none", nil, 10 * time.Second, 0, 3600, nil},
		{"padded", []Range{r(100, 110)}, 10 * time.Second, 0, 3600, []Range{r(90, 120)}},
		{"clipped to the range", []Range{r(5, 20), r(3590, 3700)}, 10 * time.Second, 0, 3600, []Range{r(0, 30), r(3580, 3600)}},
		{"overlapping once padded: one", []Range{r(100, 110), r(125, 130)}, 10 * time.Second, 0, 3600, []Range{r(90, 140)}},
		{"less than 10 s apart: one", []Range{r(100, 110), r(128, 140)}, 5 * time.Second, 0, 3600, []Range{r(95, 145)}},
		{"10 s apart: two", []Range{r(100, 110), r(130, 140)}, 5 * time.Second, 0, 3600, []Range{r(95, 115), r(125, 145)}},
		{"apart: two, in order", []Range{r(300, 310), r(100, 110)}, 0, 0, 3600, []Range{r(100, 110), r(300, 310)}},
		{"outside the range", []Range{r(4000, 4010)}, 10 * time.Second, 0, 3600, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Windows(tt.intervals, tt.pad, at(tt.from), at(tt.to))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Windows = %v\nwant      %v", got, tt.want)
			}
			if err := checkWindows(got, at(tt.from), at(tt.to)); err != nil {
				t.Error(err)
			}
		})
	}
	if err := checkWindows([]Range{r(10, 20), r(15, 30)}, t0, at(60)); err == nil {
		t.Error("overlapping windows pass the check")
	}
	if err := checkWindows([]Range{r(10, 70)}, t0, at(60)); err == nil {
		t.Error("a window past the range passes the check")
	}
}
