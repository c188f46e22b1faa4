package drill

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

// ErrCannotCut: this machine cannot simulate a power cut (not root, no
// loop devices, a tool missing). The error's message says what is missing.
var ErrCannotCut = errors.New("cannot simulate a power cut")

// powerCutTools are the programs the power-cut drill runs.
var powerCutTools = []string{"losetup", "mkfs.ext4", "e2fsck", "mount", "umount", "fsfreeze", "cp"}

// CanCut says what this machine lacks to simulate a power cut, as an
// error wrapping ErrCannotCut, or nil.
func CanCut() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: it needs root (loop devices, mount, fsfreeze); running as uid %d", ErrCannotCut, os.Geteuid())
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return fmt.Errorf("%w: no loop devices (/dev/loop-control: %v)", ErrCannotCut, err)
	}
	for _, tool := range powerCutTools {
		if _, err := lookTool(tool); err != nil {
			return fmt.Errorf("%w: %s is not installed (run `make deps`)", ErrCannotCut, tool)
		}
	}
	if out, err := exec.Command(mustTool("losetup"), "-f").CombinedOutput(); err != nil {
		return fmt.Errorf("%w: no free loop device (losetup -f: %s)", ErrCannotCut, strings.TrimSpace(string(out)))
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

func mustTool(name string) string {
	p, err := lookTool(name)
	if err != nil {
		return name
	}
	return p
}

// command runs a tool and returns its combined output, or an error that
// holds it.
func command(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(mustTool(name), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// mkfsImage creates a sparse image file of size bytes holding an empty ext4.
func mkfsImage(path string, size int64) error {
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
	_, err = command("mkfs.ext4", "-q", "-F", path)
	return err
}

// loopFS is an ext4 image attached to a loop device and mounted.
type loopFS struct {
	image, dev, dir string
}

// mountImage attaches an image to a free loop device and mounts it on dir.
func mountImage(image, dir string) (*loopFS, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out, err := command("losetup", "-f", "--show", image)
	if err != nil {
		return nil, err
	}
	l := &loopFS{image: image, dev: strings.TrimSpace(out), dir: dir}
	if _, err := command("mount", "-t", "ext4", l.dev, dir); err != nil {
		command("losetup", "-d", l.dev)
		return nil, err
	}
	return l, nil
}

// unmount unmounts and detaches, retrying while the mount is busy (a
// process killed a moment ago still closing its files), then lazily.
func (l *loopFS) unmount() error {
	if l == nil {
		return nil
	}
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err = command("umount", l.dir); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_, err = command("umount", "-l", l.dir)
			break
		}
		time.Sleep(100 * time.Millisecond) // waiting for the kernel to release the files of killed processes
	}
	if _, derr := command("losetup", "-d", l.dev); err == nil {
		err = derr
	}
	return err
}

// loopsOf lists the loop devices whose backing file is under dir: what a
// cleanup must not leave behind.
func loopsOf(dir string) []string {
	out, err := command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE")
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

// mountsUnder lists the mount points under dir.
func mountsUnder(dir string) []string {
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
