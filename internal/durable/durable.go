// Package durable makes files and folders survive a power cut: data
// flushed before a name says it is done, folders synced after an entry is
// created, renamed or removed. Every write cctvd relies on after a crash
// (segments, run metadata, the volume marker, the stopped cameras, the
// catalog's reserve, exports) goes through it.
//
// The order of writes that makes a segment survive a power cut:
//
//  1. Datasync: the segment's bytes are on the disk (fdatasync);
//  2. the folders it goes into exist durably (MkdirAll);
//  3. RenameNoReplace gives it its final name;
//  4. SyncDir on both folders makes the rename durable;
//  5. only then is it reported (catalog, uploader).
//
// Without 1, ext4's delayed allocation commits the rename long before the
// data: after a power cut the final name holds 0 bytes.
//
// A filesystem that cannot flush at all (some FUSE and network
// filesystems: CannotSync) is not an error here: a file there can only be
// as durable as the filesystem makes it. Check says so once, at start.
package durable

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Datasync flushes a file's data, and the metadata needed to read it back
// (its size), to the disk.
func Datasync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil && !CannotSync(err) {
		return &os.PathError{Op: "fdatasync", Path: path, Err: err}
	}
	return nil
}

// SyncDir makes the entries created, renamed or removed in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !CannotSync(err) {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// CannotSync says an fsync failed because the filesystem does not do it
// (some FUSE and network filesystems), not because the disk failed: a
// segment there can only be as durable as the filesystem makes it, and
// refusing to name it would leave it in staging for good.
func CannotSync(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP)
}

// Check returns an error when dir's filesystem cannot flush (CannotSync),
// for a warning at start.
func Check(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Fsync(int(d.Fd())); CannotSync(err) {
		return err
	}
	return nil
}

// MkdirAll creates root/rel's missing folders (rel is slash-separated)
// and syncs the parent of each one it creates, so that a folder exists
// after a power cut as surely as the file renamed into it.
func MkdirAll(root, rel string) error {
	dir := root
	for _, part := range strings.Split(rel, "/") {
		parent := dir
		dir = filepath.Join(dir, part)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := SyncDir(parent); err != nil {
			return err
		}
	}
	return nil
}

// RenameNoReplace renames atomically and fails with fs.ErrExist rather than
// replace an existing file.
func RenameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// The filesystem cannot do it atomically: check first. Safe for
		// the segmenter, whose goroutine alone creates final names.
		if _, err := os.Lstat(dst); err == nil {
			return fs.ErrExist
		}
		return os.Rename(src, dst)
	}
	if errors.Is(err, unix.EEXIST) {
		return fs.ErrExist
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

// Write writes path atomically and durably through write: a temporary
// file beside it (hidden: "." + its name + ".tmp-" and a number), fsync,
// rename, then the folder synced. A reader never sees half of it; after a
// power cut the file is whole, old or new. The file gets perm as open(2)
// gives it, less the umask (and as the folder's default ACL says), so an
// operator's umask 077 keeps an export private.
func Write(path string, perm os.FileMode, write func(w io.Writer) error) error {
	tmp, err := createTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-", perm)
	if err != nil {
		return err
	}
	err = write(tmp)
	if err == nil {
		if err = tmp.Sync(); CannotSync(err) {
			err = nil
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// createTemp creates a new file in dir named prefix and a random number,
// with perm for open(2): the kernel applies the umask. (os.CreateTemp
// makes it 0600, and a Chmod after would set perm regardless of the
// umask.)
func createTemp(dir, prefix string, perm os.FileMode) (*os.File, error) {
	for try := 0; ; try++ {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		return f, err
	}
}

// WriteFile is Write of data.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
