package media

import "os"

// DefaultPath is PATH when the daemon has none.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// Passed are the variables passed on from the daemon's environment when
// set: where to find programs and libraries, and what hardware-accelerated
// encoding needs to find its driver and device.
var Passed = []string{"PATH", "HOME", "LD_LIBRARY_PATH", "LIBVA_DRIVER_NAME", "LIBVA_DRIVERS_PATH", "CUDA_VISIBLE_DEVICES"}

// Env returns the environment of every ffmpeg and ffprobe cctvd runs, the
// recording ffmpeg included: the Passed variables the daemon has, TZ=UTC,
// and the C locale; nothing else. None of the daemon's own variables (the
// API token, AWS credentials, whatever the service manager set) reaches a
// child, where other processes of the same user could read it from
// /proc/<pid>/environ.
func Env() []string { return minimal(os.Getenv) }

func minimal(getenv func(string) string) []string {
	env := make([]string, 0, len(Passed)+3)
	for _, k := range Passed {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if getenv("PATH") == "" {
		env = append(env, "PATH="+DefaultPath)
	}
	return append(env, "TZ=UTC", "LANG=C", "LC_ALL=C")
}
