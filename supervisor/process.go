package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/cctvd/cctvd/internal/redact"
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
	case errors.Is(cause, errRemoved), errors.Is(cause, errReconfigured), errors.Is(cause, errReprobed):
		return ReasonReconfigured, cause.Error()
	case errors.Is(cause, errStalled):
		return ReasonStalled, "stalled: no new frames for " + stallTimeout
	}
	if l, ok := refusedIn(tail); ok {
		// Before anything else: a refusal is a failed login the camera
		// counts toward its lockout, whatever followed it.
		return ReasonAuth, "camera refused the credentials: " + trimLevel(l)
	}
	for i := len(tail) - 1; i >= 0; i-- {
		l := tail[i]
		switch {
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

// lineWriter splits a byte stream into lines (on \n or \r), masks each
// whole line, then cuts it to max bytes and hands it to fn. Masking comes
// first so that a cut never splits a secret into parts that no longer
// match. A line with no end within lineHardMax bytes is masked as a cut line
// (its tail that begins a secret goes too) and the rest of it, up to the
// next line end, is dropped. Write is called from one goroutine at a time
// (os/exec's copier), so it needs no lock.
type lineWriter struct {
	buf      []byte
	max      int
	mask     func(string) string // nil: lines as they are
	maskCut  func(string) string
	fn       func(string)
	skipping bool // dropping the rest of an overlong line
}

// lineHardMax bounds the bytes held for one line.
const lineHardMax = 64 << 10

// newLineWriter returns a lineWriter that hands lines over as they are.
func newLineWriter(max int, fn func(string)) *lineWriter { return &lineWriter{max: max, fn: fn} }

// masked has w mask every line with red (a nil red masks URL passwords and
// other credentials in credential positions).
func (w *lineWriter) masked(red *redact.Redactor) *lineWriter {
	w.mask, w.maskCut = red.String, red.StringCut
	return w
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\r\n")
		if i < 0 {
			break
		}
		if i > 0 && !w.skipping {
			w.emit(string(w.buf[:i]), w.mask)
		}
		w.skipping = false
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > lineHardMax {
		if !w.skipping {
			w.emit(string(w.buf[:lineHardMax]), w.maskCut)
		}
		w.skipping = true
		w.buf = w.buf[:0]
	}
	if cap(w.buf) > 2*lineHardMax { // do not keep a burst's buffer
		w.buf = append([]byte(nil), w.buf...)
	}
	return len(p), nil
}

func (w *lineWriter) emit(line string, mask func(string) string) {
	if mask != nil {
		line = mask(line)
	}
	if len(line) > w.max {
		line = line[:w.max]
	}
	w.fn(line)
}

// flush hands over a last line that had no newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 && !w.skipping {
		w.emit(string(w.buf), w.mask)
	}
	w.buf, w.skipping = w.buf[:0], false
}
