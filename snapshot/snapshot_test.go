//go:build integration

package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// env is a real catalog in a temporary savePath.
type env struct {
	t    *testing.T
	save string
	cat  *catalog.Catalog
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testenv.RequireTools(t)
	save := t.TempDir()
	cat, err := catalog.Open(context.Background(), filepath.Join(save, ".cctvd", layout.CatalogName), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return &env{t: t, save: save, cat: cat}
}

// add writes a real segment of camera from lavfi, starting at start, and
// records it in the catalog.
func (e *env) add(camera string, start time.Time, lavfi string) catalog.Record {
	e.t.Helper()
	end := start.Add(3 * time.Second)
	p := filepath.Join(e.save, layout.DayRel(camera, start), segment.Name(camera, "f1", start, end, 0))
	if lavfi == "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not a video"), 0o644); err != nil {
			e.t.Fatal(err)
		}
	} else {
		testenv.MakeSegment(e.t, p, lavfi)
	}
	fi, err := os.Stat(p)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.cat.Add(context.Background(), segment.Segment{Camera: camera, FeedID: "f1", Start: start, End: end, Path: p, Size: fi.Size()}, "k/"+filepath.Base(p))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// centre is the colour at the middle of a JPEG, 8 bits a channel.
func centre(t *testing.T, b []byte) (r, g, bl uint32) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the still is not a JPEG: %v", err)
	}
	bd := img.Bounds()
	r, g, bl, _ = img.At(bd.Dx()/2, bd.Dy()/2).RGBA()
	return r >> 8, g >> 8, bl >> 8
}

// TestStillFromTheEnd: the still is of the segment's last second (blue
// for 4 s, then green), it is scaled down to MaxWidth, and a segment
// shorter than a second gives its first frame.
func TestStillFromTheEnd(t *testing.T) {
	e := newEnv(t)
	t0 := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	e.add("door", t0, "color=c=blue:s=640x360:r=5:d=4[a];color=c=lime:s=640x360:r=5:d=2[b];[a][b]concat[out0]")
	s := New(Config{MaxWidth: 320}, Deps{Catalog: e.cat, Log: zerolog.Nop()})
	img, err := s.Get(context.Background(), "door")
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b := centre(t, img.JPEG); g < 200 || r > 60 || b > 60 {
		t.Errorf("the still is rgb(%d,%d,%d), want the green of the last second", r, g, b)
	}
	if cfg, _ := jpeg.DecodeConfig(bytes.NewReader(img.JPEG)); cfg.Width != 320 || cfg.Height != 180 {
		t.Errorf("the still is %dx%d, want 320x180", cfg.Width, cfg.Height)
	}
	e.add("yard", t0, "color=c=red:s=320x240:r=5:d=0.6")
	img, err = s.Get(context.Background(), "yard")
	if err != nil {
		t.Fatalf("a segment shorter than a second: %v", err)
	}
	if r, g, b := centre(t, img.JPEG); r < 200 || g > 60 || b > 60 {
		t.Errorf("the still of a short segment is rgb(%d,%d,%d), want red", r, g, b)
	}
}

// TestDamagedSegment: a newest segment ffmpeg cannot read leaves the
// previous still in place, and is not tried again.
func TestDamagedSegment(t *testing.T) {
	e := newEnv(t)
	t0 := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	first := e.add("door", t0, "color=c=red:s=320x240:r=5:d=2")
	s := New(Config{}, Deps{Catalog: e.cat, Log: zerolog.Nop()})
	ctx := context.Background()
	if _, err := s.Get(ctx, "door"); err != nil {
		t.Fatal(err)
	}
	e.add("door", t0.Add(time.Minute), "") // not a video
	for i := range 2 {
		img, err := s.Get(ctx, "door")
		if err != nil || img.SegmentID != first.ID {
			t.Fatalf("call %d after a damaged segment: %v, segment %d, want the previous still (%d)", i, err, img.SegmentID, first.ID)
		}
	}
	if st := s.Stats(); st.Runs != 2 {
		t.Errorf("%d ffmpegs, want 2: the damaged segment is tried once", st.Runs)
	}
	// A camera whose only segment is damaged has no still: an error.
	e.add("yard", t0, "")
	if _, err := s.Get(ctx, "yard"); err == nil || errors.Is(err, ErrNoSegment) {
		t.Errorf("the still of a damaged segment: %v", err)
	}
	// A camera without segments on disk.
	if _, err := s.Get(ctx, "gate"); !errors.Is(err, ErrNoSegment) {
		t.Errorf("a camera without segments: %v, want ErrNoSegment", err)
	}
	gone := e.add("gate", t0, "color=c=red:s=320x240:r=5:d=1")
	os.Remove(gone.Path)
	if _, err := s.Get(ctx, "gate"); !errors.Is(err, ErrNoSegment) {
		t.Errorf("a camera whose file is gone: %v, want ErrNoSegment", err)
	}
}

// TestConcurrencyLimit: six cameras asked at once run at most
// MaxConcurrent ffmpegs at a time, one each; asked again, none.
func TestConcurrencyLimit(t *testing.T) {
	e := newEnv(t)
	t0 := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	const n = 6
	for i := range n {
		e.add(fmt.Sprintf("cam%d", i), t0, "testsrc2=s=320x240:r=5:d=2")
	}
	s := New(Config{MaxConcurrent: 2}, Deps{Catalog: e.cat, Log: zerolog.Nop()})
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range 2 * n { // each camera twice at once
			wg.Go(func() {
				if _, err := s.Get(context.Background(), fmt.Sprintf("cam%d", i%n)); err != nil {
					errs <- err
				}
			})
		}
		await.Done(t, time.Minute, "the concurrent stills", wg.Wait) // each ffmpeg has a 10 s deadline
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if st := s.Stats(); st.Runs != n || st.Peak > 2 || st.Peak < 1 {
			t.Errorf("round %d: %d ffmpegs, at most %d at once; want %d, at most 2", round, st.Runs, st.Peak, n)
		}
	}
}
