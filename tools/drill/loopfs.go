package drill

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/cctvd/cctvd/tools/internal/loopfs"
)

// ErrCannotCut: this machine cannot simulate a power cut (not root, no
// loop devices, a tool missing). The error's message says what is missing.
var ErrCannotCut = errors.New("cannot simulate a power cut")

// CanCut says what this machine lacks to simulate a power cut, as an
// error wrapping ErrCannotCut, or nil.
func CanCut() error {
	if err := loopfs.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrCannotCut, err)
	}
	if _, err := exec.LookPath("cp"); err != nil {
		return fmt.Errorf("%w: cp is not installed", ErrCannotCut)
	}
	return nil
}
