// Package volume makes sure cctvd records onto the disk it was set up with,
// never onto whatever filesystem savePath falls back to when that disk is
// missing (not mounted at boot, unplugged, failed).
//
// At the first start savePath gets an identity marker, savePath/.cctvd-volume:
// a random id and the filesystem it was made on (the filesystem id, which
// ext4, XFS and btrfs derive from their UUID, the device and, when udev
// names it, the UUID). The marker is also remembered outside savePath, in an
// anchor file (volume.json) in $STATE_DIRECTORY (the systemd unit's
// StateDirectory) or in a stateDir configured outside savePath: that is how
// the daemon knows a marker is expected even when savePath is an empty
// folder. A savePath without the expected marker, or with another one, is a
// missing disk: the Guard reports it (its Status, which the daemon shows in
// the API, /readyz and the metrics, and a log line) and polls until the disk
// is back; recording waits for it. While recording it keeps checking: the
// marker gone or the filesystem changed stops recording until the disk is
// back.
//
// A savePath without a marker where none is expected is a first start, or
// an upgrade from a cctvd that wrote none: the marker is created. Without an
// anchor place (stateDir inside savePath and no $STATE_DIRECTORY) a first
// start cannot be told from a missing disk; the daemon warns about it.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cctvd/cctvd/internal/durable"
)

// AnchorName is the name of the file, outside savePath, that remembers the
// marker expected in savePath.
const AnchorName = "volume.json"

// Identity is what a marker holds: the volume's id and the filesystem it
// was created on.
type Identity struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Filesystem identifies the filesystem: "fsid:<hex>" (ext4, XFS and
	// btrfs derive it from their UUID) or "dev:<major>:<minor>".
	Filesystem string `json:"filesystem"`
	FSType     string `json:"fsType,omitempty"`
	Device     string `json:"device,omitempty"`
	UUID       string `json:"uuid,omitempty"`
}

// anchor is the remembered marker, and the savePath it is expected in.
type anchor struct {
	SavePath string `json:"savePath"`
	Identity
}

// AnchorDir is where the anchor is kept: $STATE_DIRECTORY (its first
// folder), else stateDir when it is outside savePath, else "" (none).
func AnchorDir(savePath, stateDir string, getenv func(string) string) string {
	if getenv != nil {
		if d, _, _ := strings.Cut(getenv("STATE_DIRECTORY"), ":"); d != "" && filepath.IsAbs(d) {
			return filepath.Clean(d)
		}
	}
	if stateDir != "" && !within(stateDir, savePath) {
		return stateDir
	}
	return ""
}

// within says whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// fsInfo is the filesystem a path is on.
type fsInfo struct {
	id, fsType, device string
}

func identify(path string) (fsInfo, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return fsInfo{}, err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fsInfo{}, err
	}
	info := fsInfo{device: fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)), fsType: fsTypeName(sfs.Type)}
	if v := sfs.Fsid.Val; v != [2]int32{} {
		info.id = fmt.Sprintf("fsid:%08x%08x", uint32(v[0]), uint32(v[1]))
	} else {
		info.id = "dev:" + info.device
	}
	return info, nil
}

func fsTypeName(magic int64) string {
	switch uint32(magic) {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0xF2F52010:
		return "f2fs"
	case 0x01021994:
		return "tmpfs"
	case 0x794C7630:
		return "overlay"
	case 0x2FC12FC1:
		return "zfs"
	case 0x4D44:
		return "vfat"
	case 0x2011BAB0:
		return "exfat"
	case 0x6969:
		return "nfs"
	}
	return fmt.Sprintf("0x%x", uint32(magic))
}

// uuidOf finds the UUID udev gives the device dev ("major:minor"), if any.
func uuidOf(dev string) string {
	entries, err := os.ReadDir("/dev/disk/by-uuid")
	if err != nil {
		return ""
	}
	for _, e := range entries {
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/dev/disk/by-uuid", e.Name()), &st) == nil &&
			fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)) == dev {
			return e.Name()
		}
	}
	return ""
}

// readJSON reads a small JSON file into v; a missing file is fs.ErrNotExist.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSON writes v to path durably: a temporary file, fsync, rename,
// fsync of the folder.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(path, append(b, '\n'), 0o644)
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// hasRecordings says whether savePath holds what an earlier cctvd left:
// camera folders, the staging folder or the catalog.
func hasRecordings(savePath string) bool {
	entries, err := os.ReadDir(savePath)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "lost+found" {
			return true
		}
	}
	return false
}

// isNotExist says whether err is a missing file.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
