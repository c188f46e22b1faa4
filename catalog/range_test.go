package catalog

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestInRangeBeforeAfter(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	var ids []int64
	for i := range 6 { // 12:00:00 to 12:01:00, 10 s each; cam2 interleaved
		r, err := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(time.Duration(i)*10*time.Second), 10), key("x"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		if _, err := c.Add(ctx, writeSegment(t, save, "cam2", t0.Add(time.Duration(i)*10*time.Second+time.Second), 10), key("y")); err != nil {
			t.Fatal(err)
		}
	}
	// The second segment is gone for good: deleted before S3 had it.
	if err := c.MarkDeleted(ctx, []int64{ids[1]}, "retention"); err != nil {
		t.Fatal(err)
	}
	recs, err := c.InRange(ctx, "cam1", t0.Add(5*time.Second), t0.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range recs {
		got = append(got, r.ID)
	}
	if want := ids[0:3]; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("InRange(12:00:05, 12:00:30) = %v, want %v (oldest first, lost ones included, 12:00:30 excluded)", got, want)
	}
	if r, err := c.Before(ctx, "cam1", t0.Add(20*time.Second)); err != nil || r.ID != ids[0] {
		t.Errorf("Before(12:00:20) = %d, %v; want %d (the lost 12:00:10 skipped)", r.ID, err, ids[0])
	}
	if r, err := c.After(ctx, "cam1", t0.Add(10*time.Second)); err != nil || r.ID != ids[2] {
		t.Errorf("After(12:00:10) = %d, %v; want %d (the lost 12:00:10 skipped)", r.ID, err, ids[2])
	}
	if _, err := c.Before(ctx, "cam1", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Before(first start) = %v, want ErrNotFound", err)
	}
	if _, err := c.After(ctx, "cam1", t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("After(an hour on) = %v, want ErrNotFound", err)
	}
}
