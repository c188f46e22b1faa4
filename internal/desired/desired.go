// Package desired keeps what operators asked of each camera (stopped, or
// recording) in a small file of its own in the state folder, cameras.json,
// so that the cameras an operator stopped stay stopped after a restart
// without the catalog: recording starts before the catalog is open, and
// whatever state the catalog is in.
//
// The file is written durably (a temporary file, fsync, rename, fsync of
// the folder). A file that cannot be read is logged by the caller and taken
// as "no camera stopped": recording is the safe default of an NVR.
package desired

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"

	"github.com/cctvd/cctvd/internal/durable"
)

// file is the file's content.
type file struct {
	// Stopped lists the cameras an operator stopped.
	Stopped []string `json:"stopped"`
}

// Store is the cameras' desired states, kept in a file. It is safe for
// concurrent use.
type Store struct {
	path string

	mu      sync.Mutex
	stopped map[string]bool
}

// Load reads the file at path. exists is false when there is no file yet
// (a first start, or an upgrade from a cctvd that kept the states in the
// catalog). On an error the store holds no stopped camera and is still
// usable: the next change rewrites the file.
func Load(path string) (s *Store, exists bool, err error) {
	s = &Store{path: path, stopped: map[string]bool{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, true, fmt.Errorf("desired camera states: %w", err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return s, true, fmt.Errorf("desired camera states %s: %w", path, err)
	}
	for _, c := range f.Stopped {
		s.stopped[c] = true
	}
	return s, true, nil
}

// Stopped returns the cameras an operator stopped.
func (s *Store) Stopped() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.stopped))
	for c := range s.stopped {
		out[c] = true
	}
	return out
}

// Set records that an operator stopped (or started) a camera, durably,
// before it returns.
func (s *Store) Set(camera string, stopped bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.stopped[camera]
	if stopped {
		s.stopped[camera] = true
	} else {
		delete(s.stopped, camera)
	}
	if err := s.save(); err != nil {
		if was {
			s.stopped[camera] = true
		} else {
			delete(s.stopped, camera)
		}
		return err
	}
	return nil
}

// Replace sets every camera's state at once (the import from an older
// catalog) and saves them.
func (s *Store) Replace(stopped map[string]bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = map[string]bool{}
	for c, v := range stopped {
		if v {
			s.stopped[c] = true
		}
	}
	return s.save()
}

// save writes the file; s.mu is held.
func (s *Store) save() error {
	f := file{Stopped: []string{}}
	for c := range s.stopped {
		f.Stopped = append(f.Stopped, c)
	}
	sort.Strings(f.Stopped)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("desired camera states: %w", err)
	}
	return nil
}
