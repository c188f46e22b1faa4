package segmenter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The order of writes that makes a segment survive a power cut:
//
//  1. datasync: the segment's bytes are on the disk (fdatasync);
//  2. the folders it goes into exist durably (mkdirDurable);
//  3. renameNoReplace gives it its final name;
//  4. syncDir on both folders makes the rename durable;
//  5. only then is it reported (catalog, uploader).
//
// Without 1, ext4's delayed allocation commits the rename long before the
// data: after a power cut the final name holds 0 bytes.

// datasync flushes a file's data, and the metadata needed to read it back
// (its size), to the disk. On a filesystem that cannot flush (cannotSync),
// there is nothing more to do: Run warns about it once.
func datasync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil && !cannotSync(err) {
		return &os.PathError{Op: "fdatasync", Path: path, Err: err}
	}
	return nil
}

// syncDir makes the entries created, renamed or removed in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !cannotSync(err) {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// cannotSync says an fsync failed because the filesystem does not do it
// (some FUSE and network filesystems), not because the disk failed: a
// segment there can only be as durable as the filesystem makes it, and
// refusing to name it would leave it in staging for good.
func cannotSync(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP)
}

// checkSync warns once when savePath's filesystem cannot flush.
func checkSync(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Fsync(int(d.Fd())); cannotSync(err) {
		return err
	}
	return nil
}

// mkdirDurable creates root/rel's missing folders (rel is slash-separated)
// and syncs the parent of each one it creates, so that a folder exists
// after a power cut as surely as the file renamed into it.
func mkdirDurable(root, rel string) error {
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
		if err := syncDir(parent); err != nil {
			return err
		}
	}
	return nil
}

// renameNoReplace renames atomically and fails with fs.ErrExist rather than
// replace an existing file.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// The filesystem cannot do it atomically; only the segmenter's
		// goroutine creates final names, so checking first is safe.
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

// boxes reads a fragmented MP4's top-level boxes: how many fragments
// (moof) it holds, and whether ffmpeg wrote it to its end: its boxes tile
// the file exactly and the last is the trailer ffmpeg writes as it closes a
// segment (mfra). A file whose tail never reached the disk (a power cut
// before the data was flushed) is not whole, even when ffmpeg had listed
// it as closed; a file without a fragment holds no frame.
func boxes(path string) (fragments int, whole bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	size := fi.Size()
	var hdr [16]byte
	var off int64
	last := ""
	for off < size {
		if size-off < 8 {
			return fragments, false, nil
		}
		if _, err := f.ReadAt(hdr[:8], off); err != nil {
			return fragments, false, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		last = string(hdr[4:8])
		switch n {
		case 0: // the box runs to the end of the file: a muxer still writing
			return fragments, false, nil
		case 1: // 64-bit size
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				if errors.Is(err, io.EOF) {
					return fragments, false, nil
				}
				return fragments, false, err
			}
			n = int64(binary.BigEndian.Uint64(hdr[8:16]))
			if n < 16 {
				return fragments, false, nil
			}
		default:
			if n < 8 {
				return fragments, false, nil
			}
		}
		if n > size-off {
			return fragments, false, nil // cut short
		}
		if last == "moof" {
			fragments++
		}
		off += n
	}
	return fragments, last == "mfra", nil
}
