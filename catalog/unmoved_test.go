package catalog

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cctvd/cctvd/layout"
)

// TestReconcileUndoesAQuarantineCutShort: the uploader records a file's
// quarantine before it moves the file; a crash in between leaves the row
// pointing into the quarantine and the file in its day folder. Reconcile
// puts the row back at the file (present, to be checked against S3 and
// decoded again), instead of adding the file as a second row, which
// would hold the segment twice and could never be quarantined (the
// quarantine path is the first row's). A quarantined row whose file did
// move, or is in neither place, is left as it is.
func TestReconcileUndoesAQuarantineCutShort(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	qdir := layout.QuarantineDir(save, "cam1")
	os.MkdirAll(qdir, 0o755)
	var cut, cutN, moved, gone Record
	for i, r := range []*Record{&cut, &cutN, &moved, &gone} {
		seg := writeSegment(t, save, "cam1", t0.Add(time.Duration(i)*10*time.Second), 100)
		rec, err := c.Add(ctx, seg, "k"+seg.Path)
		if err != nil {
			t.Fatal(err)
		}
		*r = rec
	}
	c.AwaitDecode(ctx, cutN.ID) // it was in the decode lane, which found it damaged
	quarantine := func(r Record, name string, move bool) string {
		dst := filepath.Join(qdir, name)
		if err := c.MarkQuarantined(ctx, r.ID, dst, "the file is empty"); err != nil {
			t.Fatal(err)
		}
		if move {
			if err := os.Rename(r.Path, dst); err != nil {
				t.Fatal(err)
			}
		}
		return dst
	}
	quarantine(cut, cut.Name(), false)
	quarantine(cutN, trimExt(cutN.Name())+".1.mp4", false) // the name was taken in the quarantine
	movedTo := quarantine(moved, moved.Name(), true)
	quarantine(gone, gone.Name(), false)
	os.Remove(gone.Path)

	res, err := c.Reconcile(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 0 || res.Returned != 2 {
		t.Errorf("reconcile = %+v, want nothing added, 2 rows back", res)
	}
	for _, r := range []Record{cut, cutN} {
		back, _ := c.Get(ctx, r.ID)
		if back.Local != Present || back.Path != r.Path || !back.VerifyRemote || back.DeleteCause != "" {
			t.Errorf("%s: %s at %s, verify %t, cause %q; want present where its file is, to be checked against S3",
				r.Name(), back.Local, back.Path, back.VerifyRemote, back.DeleteCause)
		}
	}
	for _, r := range []Record{cut, cutN} {
		if back, _ := c.Get(ctx, r.ID); !back.MustDecode || back.DecodeCheck != "" {
			t.Errorf("%s: must decode %t, decode check %q; want its decode check afresh", r.Name(), back.MustDecode, back.DecodeCheck)
		}
	}
	if back, _ := c.Get(ctx, moved.ID); back.Local != Quarantined || back.Path != movedTo {
		t.Errorf("the moved file's row: %s at %s", back.Local, back.Path)
	}
	if back, _ := c.Get(ctx, gone.ID); back.Local != Quarantined {
		t.Errorf("the row whose file is nowhere: %s, want left quarantined", back.Local)
	}
	if tot, _ := c.Totals(ctx); tot.Count != 2 {
		t.Errorf("%d present rows, want the 2 put back", tot.Count)
	}
}

func trimExt(name string) string { return name[:len(name)-len(filepath.Ext(name))] }
