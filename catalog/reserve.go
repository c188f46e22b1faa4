package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cctvd/cctvd/internal/durable"
)

// DefaultReserveBytes is the size of the reserve file.
const DefaultReserveBytes = 8 << 20

// Reserve is a file of allocated blocks kept beside the catalog, so that
// on a full filesystem SQLite can still commit: releasing it gives back
// its blocks for the writes that record a deletion before the deletion
// frees space (retention marks rows before it unlinks files). It is put
// back once the filesystem has room again.
type Reserve struct {
	path string
	size int64

	mu       sync.Mutex
	released int // times released
}

// NewReserve returns the reserve at path, of size bytes (default
// DefaultReserveBytes). It does not create it: Ensure does.
func NewReserve(path string, size int64) *Reserve {
	if size <= 0 {
		size = DefaultReserveBytes
	}
	return &Reserve{path: path, size: size}
}

// Path is the reserve file's path.
func (r *Reserve) Path() string { return r.path }

// Size is the reserve's size in bytes.
func (r *Reserve) Size() int64 { return r.size }

// Held says whether the reserve file is in place, whole.
func (r *Reserve) Held() bool {
	var st unix.Stat_t
	return unix.Stat(r.path, &st) == nil && st.Size >= r.size && st.Blocks*512 >= r.size
}

// Ensure creates the reserve when it is missing and the filesystem can
// spare it: at least four times its size must stay free after it. It
// reports whether it created the file.
func (r *Reserve) Ensure() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Held() {
		return false, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(r.path), &st); err != nil {
		return false, fmt.Errorf("catalog reserve: %w", err)
	}
	if free := int64(st.Bavail) * st.Bsize; free < 5*r.size {
		return false, nil // not now: the space is needed elsewhere
	}
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return false, fmt.Errorf("catalog reserve: %w", err)
	}
	err = allocate(f, r.size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, r.path)
	}
	if err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("catalog reserve: %w", err)
	}
	_ = durable.SyncDir(filepath.Dir(r.path)) // the reserve is there either way
	return true, nil
}

// allocate gives f size bytes of real blocks: fallocate where the
// filesystem supports it, written zeros elsewhere.
func allocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if err == nil || !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return nil
}

// Release deletes the reserve file, giving its blocks back to the
// filesystem. It reports whether there was anything to give back.
func (r *Reserve) Release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	fi, err := os.Stat(r.path)
	if err != nil {
		return false
	}
	if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	r.released++
	return fi.Size() > 0
}

// Released counts the times the reserve was given back.
func (r *Reserve) Released() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.released
}
