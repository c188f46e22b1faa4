package durable

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesWholeAndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, data := range []string{"first\n", "second, longer\n"} {
		if err := WriteFile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	boom := errors.New("boom")
	if err := Write(p, 0o640, func(w io.Writer) error { w.Write([]byte("half")); return boom }); !errors.Is(err, boom) {
		t.Errorf("a failed write returned %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "second, longer\n" {
		t.Errorf("a failed write changed the file: %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the folder holds %v, want the file alone", entries)
	}
}

func TestRenameNoReplaceAndMkdirAll(t *testing.T) {
	root := t.TempDir()
	if err := MkdirAll(root, "cam/2026-01-06"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "cam", "2026-01-06")
	a, b := filepath.Join(root, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := RenameNoReplace(a, b); !errors.Is(err, fs.ErrExist) {
		t.Errorf("rename onto a file: %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(b); string(got) != b {
		t.Errorf("the file renamed onto was replaced: %q", got)
	}
	if err := RenameNoReplace(a, filepath.Join(dir, "c")); err != nil {
		t.Errorf("rename to a free name: %v", err)
	}
	if err := Datasync(b); err != nil {
		t.Errorf("datasync: %v", err)
	}
}
