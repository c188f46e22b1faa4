package desired

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cctvd/cctvd/layout"
)

func TestStoreSurvivesReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), layout.DesiredName)
	s, exists, err := Load(path)
	if err != nil || exists || len(s.Stopped()) != 0 {
		t.Fatalf("no file: %v %v %v", s.Stopped(), exists, err)
	}
	if err := s.Set("door", true); err != nil {
		t.Fatal(err)
	}
	s.Set("gate", true)
	s.Set("gate", false)
	s2, exists, err := Load(path)
	if err != nil || !exists {
		t.Fatal(exists, err)
	}
	if got := s2.Stopped(); len(got) != 1 || !got["door"] {
		t.Errorf("after reload: %v", got)
	}
	if err := s2.Replace(map[string]bool{"a": true, "b": false}); err != nil {
		t.Fatal(err)
	}
	s3, _, _ := Load(path)
	if got := s3.Stopped(); len(got) != 1 || !got["a"] {
		t.Errorf("after replace: %v", got)
	}
}

func TestUnreadableFileMeansRecording(t *testing.T) {
	path := filepath.Join(t.TempDir(), layout.DesiredName)
	os.WriteFile(path, []byte("{garbage"), 0o644)
	s, exists, err := Load(path)
	if err == nil || !exists || len(s.Stopped()) != 0 {
		t.Fatalf("garbage: %v %v %v", s.Stopped(), exists, err)
	}
	if err := s.Set("door", true); err != nil {
		t.Fatal(err)
	}
	if s2, _, err := Load(path); err != nil || !s2.Stopped()["door"] {
		t.Errorf("rewritten file: %v %v", s2.Stopped(), err)
	}
}

func TestFailedSaveChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := Load(filepath.Join(dir, "gone", layout.DesiredName)) // its folder does not exist
	if err := s.Set("door", true); err == nil {
		t.Fatal("saved into a missing folder")
	}
	if s.Stopped()["door"] {
		t.Error("the state changed although it was not saved")
	}
}
