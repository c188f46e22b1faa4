// Package loopfs makes real filesystems for tests, drills and benchmarks:
// an ext4 in a sparse image file, attached to a loop device and mounted.
// It needs root and loop devices; Check says what is missing.
package loopfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrUnavailable: this machine cannot make loop filesystems (not root, no
// loop devices, a tool missing). The error's message says what is missing.
var ErrUnavailable = errors.New("loop filesystems unavailable")

// Tools are the programs the package runs (fsfreeze for Freeze).
var Tools = []string{"losetup", "mkfs.ext4", "e2fsck", "mount", "umount", "fsfreeze"}

// Check says what this machine lacks to make loop filesystems, as an error
// wrapping ErrUnavailable, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: it needs root (loop devices, mount); running as uid %d", ErrUnavailable, os.Geteuid())
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return fmt.Errorf("%w: no loop devices (/dev/loop-control: %v)", ErrUnavailable, err)
	}
	for _, tool := range Tools {
		if _, err := lookTool(tool); err != nil {
			return fmt.Errorf("%w: %s is not installed (run `make deps`)", ErrUnavailable, tool)
		}
	}
	if out, err := exec.Command(tool("losetup"), "-f").CombinedOutput(); err != nil {
		return fmt.Errorf("%w: no free loop device (losetup -f: %s)", ErrUnavailable, strings.TrimSpace(string(out)))
	}
	return nil
}

// lookTool finds a tool on PATH or in the sbin folders, which a PATH
// outside a root login may lack.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func tool(name string) string {
	if p, err := lookTool(name); err == nil {
		return p
	}
	return name
}

// Run runs a tool and returns its combined output, or an error that holds
// it (and wraps an *exec.ExitError for its exit code).
func Run(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(tool(name), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// MkfsImage creates a sparse image file of size bytes holding an empty ext4.
func MkfsImage(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	_, err = Run("mkfs.ext4", "-q", "-F", path)
	return err
}

// FS is an ext4 image attached to a loop device and mounted.
type FS struct {
	Image, Dev, Dir string
}

// Mount attaches an image to a free loop device and mounts it on dir.
func Mount(image, dir string) (*FS, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out, err := Run("losetup", "-f", "--show", image)
	if err != nil {
		return nil, err
	}
	l := &FS{Image: image, Dev: strings.TrimSpace(out), Dir: dir}
	if _, err := Run("mount", "-t", "ext4", l.Dev, dir); err != nil {
		Run("losetup", "-d", l.Dev)
		return nil, err
	}
	return l, nil
}

// Unmount unmounts and detaches, retrying while the mount is busy (a
// process killed a moment ago still closing its files), then lazily. A nil
// FS is nothing to do.
func (l *FS) Unmount() error {
	if l == nil {
		return nil
	}
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err = Run("umount", l.Dir); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_, err = Run("umount", "-l", l.Dir)
			break
		}
		time.Sleep(100 * time.Millisecond) // the kernel releasing a killed process's files: no event to await
	}
	if _, derr := Run("losetup", "-d", l.Dev); err == nil {
		err = derr
	}
	return err
}

// Freeze blocks every write to the filesystem (fsfreeze) until Thaw.
func (l *FS) Freeze() error {
	_, err := Run("fsfreeze", "-f", l.Dir)
	return err
}

// Thaw lets writes go on.
func (l *FS) Thaw() error {
	_, err := Run("fsfreeze", "-u", l.Dir)
	return err
}

// Stat is the loop device's I/O counters since it was attached
// (/sys/block/loopN/stat).
type Stat struct {
	WriteIOs, WriteSectors, Flushes int64
}

// Stat reads the loop device's counters.
func (l *FS) Stat() (Stat, error) {
	data, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(l.Dev), "stat"))
	if err != nil {
		return Stat{}, err
	}
	f := strings.Fields(string(data))
	if len(f) < 7 {
		return Stat{}, fmt.Errorf("%s: unexpected stat %q", l.Dev, data)
	}
	var s Stat
	fmt.Sscan(f[4], &s.WriteIOs)
	fmt.Sscan(f[6], &s.WriteSectors)
	if len(f) >= 16 { // Linux 5.5 and later count flush requests
		fmt.Sscan(f[15], &s.Flushes)
	}
	return s, nil
}

// LoopsOf lists the loop devices whose backing file is under dir: what a
// cleanup must not leave behind.
func LoopsOf(dir string) []string {
	out, err := Run("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE")
	if err != nil {
		return nil
	}
	var devs []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[1], dir) {
			devs = append(devs, f[0])
		}
	}
	return devs
}

// MountsUnder lists the mount points under dir.
func MountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir) {
			out = append(out, f[1])
		}
	}
	return out
}
