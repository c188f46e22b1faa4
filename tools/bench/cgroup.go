package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cgroup is a control group the bench makes for one side of a comparison:
// every process started in it, and every process those start, is counted
// in its CPU time, the ones that exited included. (Summing /proc/PID/stat
// over the processes seen alive at two instants misses the children that
// exit in between and counts a restarted one from zero.)
type cgroup struct {
	dir string
	v2  bool // cgroup v2's cpu.stat; else v1's cpuacct.usage
}

// newCgroup makes a control group named name under the cgroup v2 hierarchy
// (unified, or the hybrid layout's /sys/fs/cgroup/unified), else under v1's
// cpuacct controller. It needs root.
func newCgroup(name string) (*cgroup, error) {
	v2, v1, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	var cg *cgroup
	switch {
	case v2 != "":
		cg = &cgroup{dir: filepath.Join(v2, name), v2: true}
	case v1 != "":
		cg = &cgroup{dir: filepath.Join(v1, name)}
	default:
		return nil, errors.New("no cgroup v2 nor cpuacct hierarchy mounted: the CPU comparisons count each side in a cgroup of its own")
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("make cgroup %s (run the bench as root): %w", cg.dir, err)
	}
	return cg, nil
}

// cgroupMounts finds where cgroup v2 and v1's cpuacct are mounted.
func cgroupMounts() (v2, v1cpuacct string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, rest := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(rest) < 3 {
			continue
		}
		switch {
		case rest[0] == "cgroup2" && v2 == "":
			v2 = fields[4]
		case rest[0] == "cgroup" && strings.Contains(","+rest[2]+",", ",cpuacct,") && v1cpuacct == "":
			v1cpuacct = fields[4]
		}
	}
	return v2, v1cpuacct, sc.Err()
}

// how says how the group's CPU is counted, for the table.
func (c *cgroup) how() string {
	if c.v2 {
		return "cgroup cpu.stat"
	}
	return "cgroup cpuacct"
}

// cpu is the CPU seconds the group's processes have used, living or not.
func (c *cgroup) cpu() (float64, error) {
	if !c.v2 {
		data, err := os.ReadFile(filepath.Join(c.dir, "cpuacct.usage"))
		if err != nil {
			return 0, err
		}
		ns, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
		return ns / 1e9, err
	}
	data, err := os.ReadFile(filepath.Join(c.dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, err := strconv.ParseFloat(v, 64)
			return us / 1e6, err
		}
	}
	return 0, fmt.Errorf("%s/cpu.stat has no usage_usec", c.dir)
}

// procs lists the group's processes that run the program named comm.
func (c *cgroup) procs(comm string) []int {
	data, _ := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	var out []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if name, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(name)) == comm {
			out = append(out, pid)
		}
	}
	return out
}

// command runs name in the group from its first instruction: a shell
// joins the group, then becomes the program (same pid).
func (c *cgroup) command(name string, args ...string) *exec.Cmd {
	script := fmt.Sprintf(`echo $$ > '%s' && exec "$0" "$@"`, filepath.Join(c.dir, "cgroup.procs"))
	return exec.Command("/bin/sh", append([]string{"-c", script, name}, args...)...)
}

// remove deletes the group once its processes are gone.
func (c *cgroup) remove() {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) { // the kernel empties it as they are reaped
		if err := os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return
		}
	}
}

// machineBusy is the CPU seconds the whole machine has spent busy (every
// core, everything but idle and iowait).
func machineBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user
			break
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / 100 // USER_HZ
}
