// Package logging builds the daemon's one zerolog.Logger: every line is
// redacted first, then written to the output (JSON, or human-readable on a
// terminal) at the configured level, and to the in-memory rings of the
// log-tail API at every level, ffmpeg's debug lines included.
package logging

import (
	"io"
	"os"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/logring"
	"github.com/cctvd/cctvd/internal/redact"
)

// Options configure New.
type Options struct {
	// Level is debug, info, warn or error.
	Level string
	// Format is json, console or auto (console when Out is a terminal).
	Format string
	Out    io.Writer
	// Hub, if set, receives every line for the log-tail API.
	Hub *logring.Hub
	// Redactor masks secrets in every line.
	Redactor *redact.Redactor
}

// New returns the root logger. Secrets added to o.Redactor later (a
// config reload) are masked from then on.
func New(o Options) zerolog.Logger {
	level, err := zerolog.ParseLevel(o.Level)
	if err != nil || o.Level == "" {
		level = zerolog.InfoLevel
	}
	out := o.Out
	if o.Format == "console" || (o.Format == "auto" && isTerminal(o.Out)) {
		out = zerolog.ConsoleWriter{Out: o.Out, TimeFormat: "15:04:05.000"}
	}
	writers := []io.Writer{&zerolog.FilteredLevelWriter{Writer: zerolog.LevelWriterAdapter{Writer: out}, Level: level}}
	if o.Hub != nil {
		writers = append(writers, o.Hub)
	}
	w := redact.NewWriter(o.Redactor, zerolog.MultiLevelWriter(writers...))
	return zerolog.New(w).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
