package testenv

import (
	"fmt"
	"os"
	"testing"
)

// SkipRootEnv names the environment variable that, set to 1, skips the
// integration tests that need root, loop devices, mounts or network
// namespaces on a machine that lacks them. `make test` runs as root, where
// they run; without the variable, a missing capability fails them.
const SkipRootEnv = "CCTVD_SKIP_ROOT"

// NeedsRoot stops a test that cannot run here because the machine lacks
// root or what root provides (a tmpfs or loop mount, a loop device, a
// network namespace), which why says: it fails, unless CCTVD_SKIP_ROOT=1
// asks to skip such tests, and then it skips saying so. Never silently.
func NeedsRoot(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv(SkipRootEnv) == "1" {
		t.Skipf("%s (skipped: %s=1)", why, SkipRootEnv)
	}
	t.Fatalf("%s: this test needs root (`make test` runs as root); set %s=1 to skip the tests that do", why, SkipRootEnv)
}
