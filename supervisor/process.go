package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// ErrStorageUnavailable is the cause to cancel Run's context with when
// savePath's disk went missing: each ffmpeg is stopped as at a shutdown and
// its exit is reported with ReasonStorage.
var ErrStorageUnavailable = errors.New("savePath's disk is not available")

// Causes of a run's cancellation: they choose the signal ffmpeg gets and
// how its exit is reported.
var (
	errStopped      = errors.New("stopped")
	errStalled      = errors.New("stalled")
	errShutdown     = errors.New("daemon shutting down")
	errRemoved      = errors.New("removed from the config")
	errReconfigured = errors.New("restarted with a new config")
)

// configureProcess puts ffmpeg in its own process group, so that signals
// reach it and anything it spawns, and has the kernel send it SIGTERM if the
// daemon dies, so that it finalises its segment instead of recording on
// unsupervised. sig picks the stop signal when the run's context ends.
func configureProcess(cmd *exec.Cmd, sig func() syscall.Signal) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error {
		// The group id is the pid (Setpgid with Pgid 0).
		err := syscall.Kill(-cmd.Process.Pid, sig())
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}

// childEnv is the daemon's environment for ffmpeg, in UTC and without AWS
// credentials, which ffmpeg has no use for.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TZ=") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "TZ=UTC")
}

// exitStatus returns the exit code (-1 when killed) and the signal, if any.
func exitStatus(err error) (code int, signal string) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err == nil {
			return 0, ""
		}
		return -1, ""
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal().String()
	}
	return ee.ExitCode(), ""
}

// classify turns an ended run into a reason and a message for people.
// cause is why the run's context ended (nil if ffmpeg exited on its own);
// tail holds ffmpeg's last stderr lines, redacted, newest last.
func classify(cause error, code int, signal string, tail []string, stallTimeout string) (ExitReason, string) {
	switch {
	case errors.Is(cause, errStopped):
		return ReasonStopped, "stopped by operator"
	case errors.Is(cause, errShutdown):
		return ReasonStopped, "daemon shut down"
	case errors.Is(cause, ErrStorageUnavailable):
		return ReasonStorage, "stopped: " + ErrStorageUnavailable.Error()
	case errors.Is(cause, errRemoved), errors.Is(cause, errReconfigured):
		return ReasonReconfigured, cause.Error()
	case errors.Is(cause, errStalled):
		return ReasonStalled, "stalled: no new frames for " + stallTimeout
	}
	for i := len(tail) - 1; i >= 0; i-- {
		l := tail[i]
		switch {
		case strings.Contains(l, "401 Unauthorized"), strings.Contains(l, "403 Forbidden"):
			return ReasonAuth, "camera refused the credentials: " + trimLevel(l)
		case strings.Contains(l, "404 Not Found"):
			return ReasonNotFound, "camera has no stream at this path: " + trimLevel(l)
		case strings.Contains(l, "Connection refused"), strings.Contains(l, "No route to host"),
			strings.Contains(l, "Network is unreachable"), strings.Contains(l, "timed out"),
			strings.Contains(l, "Connection timed out"), strings.Contains(l, "Name or service not known"):
			return ReasonUnreachable, "camera unreachable: " + trimLevel(l)
		}
	}
	msg := fmt.Sprintf("ffmpeg exited with code %d", code)
	if signal != "" {
		msg = "ffmpeg was killed by " + signal
	}
	if code == 0 && signal == "" {
		msg += " (the camera ended the stream or stopped sending)"
	}
	for i := len(tail) - 1; i >= 0; i-- {
		if lv := ffmpegLevel(tail[i]); lv == levelError {
			msg += ": " + trimLevel(tail[i])
			break
		}
	}
	return ReasonExited, msg
}

type ffLevel int

const (
	levelInfo ffLevel = iota
	levelWarning
	levelError
)

// ffmpegLevel reads the level that -loglevel level+info puts in each line.
func ffmpegLevel(line string) ffLevel {
	switch {
	case strings.Contains(line, "[error]"), strings.Contains(line, "[fatal]"), strings.Contains(line, "[panic]"):
		return levelError
	case strings.Contains(line, "[warning]"):
		return levelWarning
	}
	return levelInfo
}

// trimLevel drops ffmpeg's "[component @ 0x...] [level] " prefix.
func trimLevel(line string) string {
	for _, lv := range []string{"[error] ", "[fatal] ", "[panic] ", "[warning] ", "[info] "} {
		if _, after, ok := strings.Cut(line, lv); ok {
			return after
		}
	}
	return line
}

// lineWriter splits a byte stream into lines (on \n or \r) and hands each
// to fn. A line longer than max is cut. Write is called from one goroutine
// at a time (os/exec's copier), so it needs no lock.
type lineWriter struct {
	buf []byte
	max int
	fn  func(string)
}

func newLineWriter(max int, fn func(string)) *lineWriter { return &lineWriter{max: max, fn: fn} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\r\n")
		if i < 0 {
			break
		}
		if i > 0 {
			w.fn(string(w.buf[:min(i, w.max)]))
		}
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) > w.max { // a line too long: cut it in pieces
		w.fn(string(w.buf[:w.max]))
		w.buf = w.buf[w.max:]
	}
	if cap(w.buf) > 4*w.max { // do not keep a burst's buffer
		w.buf = append([]byte(nil), w.buf...)
	}
	return len(p), nil
}

// flush hands over a last line that had no newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = w.buf[:0]
	}
}
