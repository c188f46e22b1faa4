// Package media runs cctvd's short ffmpeg and ffprobe jobs, in one way: a
// minimal environment (Env), a process group of their own that dies with
// the daemon (Pdeathsig) and is killed whole at its deadline, bounded
// output, and the timeouts below. It asks ffprobe what a camera sends
// (Stream), how long a file ffmpeg never closed plays (Duration), whether
// every frame of a segment decodes (Frames), which encoders ffmpeg has
// (Encoders), and has ffmpeg make a camera's still (Still).
//
// The recording ffmpeg is not one of these: the supervisor runs and stops
// it (it needs SIGINT to finalise a segment), with Env too.
package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Timeouts of the jobs.
const (
	// StreamTimeout bounds ffprobe asking a camera what it sends (it also
	// gives up connecting after 5 s).
	StreamTimeout = 15 * time.Second
	// SalvageTimeout bounds ffprobe reading the duration and first frame
	// of a file to salvage.
	SalvageTimeout = 30 * time.Second
	// EncodersTimeout bounds ffmpeg -encoders.
	EncodersTimeout = 10 * time.Second
	// StillTimeout is the default bound of ffmpeg making a still.
	StillTimeout = 10 * time.Second
)

// ErrTimeout: the job did not end within its deadline; it was killed.
var ErrTimeout = errors.New("not done in time")

// job is one run of ffmpeg or ffprobe.
type job struct {
	bin     string
	args    []string
	timeout time.Duration
	// idle runs it on one core at the lowest priority: recording first.
	idle bool
	// maxOut bounds what is kept of stdout; more is an error. Default 1 MiB.
	maxOut int
	// stdin, if set, is the program's standard input.
	stdin io.Reader
}

// maxErr is what is kept of a job's stderr: enough to say what went wrong.
const maxErr = 2048

// result is what a job wrote.
type result struct {
	stdout []byte
	stderr string
}

// run runs j under ctx and its timeout. The error wraps *exec.ExitError
// when the program ran and failed (see Failed), ErrTimeout when it was
// killed at its deadline; any other error means it could not run.
func (j job) run(ctx context.Context) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	if j.maxOut <= 0 {
		j.maxOut = 1 << 20
	}
	cmd := exec.CommandContext(ctx, j.bin, j.args...)
	cmd.Env = Env() // not the daemon's token or AWS credentials
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	stdout, stderr := &limited{max: j.maxOut}, &limited{max: maxErr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Stdin = j.stdin
	err := cmd.Start()
	if err == nil {
		if j.idle {
			// Best effort: it runs all the same if this fails.
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 19)
		}
		err = cmd.Wait()
	}
	res := result{stdout: stdout.Bytes(), stderr: strings.TrimSpace(stderr.String())}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return res, fmt.Errorf("%s: %w (%v)", j.bin, ErrTimeout, j.timeout)
	case ctx.Err() != nil:
		return res, ctx.Err()
	case err != nil:
		return res, err
	case stdout.over:
		return res, fmt.Errorf("%s: more than %d bytes of output", j.bin, j.maxOut)
	}
	return res, nil
}

// Failed says whether err is a job that ran and exited with an error: the
// input's fault, not the machine's. A job killed by a signal (the OOM
// killer, a stop) or at its deadline did not fail on its input.
func Failed(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.Exited()
}

// limited keeps the first max bytes written to it and notes the rest. (It
// holds its buffer rather than embedding it: an embedded bytes.Buffer's
// ReadFrom would let io.Copy past the limit.)
type limited struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); len(p) > room {
		l.over = true
		l.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return l.buf.Write(p)
}

func (l *limited) Bytes() []byte  { return l.buf.Bytes() }
func (l *limited) String() string { return l.buf.String() }
