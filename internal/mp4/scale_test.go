package mp4

import (
	"math"
	"testing"
	"time"
)

func TestScale(t *testing.T) {
	for _, tc := range []struct{ v, from, to, want int64 }{
		{90000, 90000, 1000, 1000},
		{1, 3, 1000, 333},
		{2, 3, 1000, 667},
		{-2, 3, 1000, -667},
		{48 * 3600 * 90000, 90000, int64(time.Second), 48 * 3600 * int64(time.Second)}, // overflows 64 bits in the product
		{math.MaxInt64, 1, 1000, math.MaxInt64},
	} {
		if got := scale(tc.v, tc.from, tc.to); got != tc.want {
			t.Errorf("scale(%d, %d, %d) = %d, want %d", tc.v, tc.from, tc.to, got, tc.want)
		}
	}
}
