// Command drill runs cctvd's continuity drill or, with -powercut, its
// power-cut drill (package drill) and prints the report; it exits 1 when a
// check fails.
//
//	go run ./tools/cmd/drill -cctvd bin/cctvd -duration 15m
//	go run ./tools/cmd/drill -cctvd bin/cctvd -powercut 5 -cameras 2
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/tools/drill"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "drill:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("cctvd", "bin/cctvd", "the cctvd binary under test")
	dur := fs.Duration("duration", 15*time.Minute, "recording time; faults are spread over it")
	cams := fs.Int("cameras", 3, "cameras (at least 3; the power-cut drill: any)")
	cuts := fs.Int("powercut", 0, "run the power-cut drill with this many cuts instead of the continuity drill")
	seg := fs.Int("segment", 4, "videoDuration, seconds")
	work := fs.String("work", "", "work folder (default: a new temporary one, removed after)")
	report := fs.String("report", "", "also write the report to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := *work
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cctvd-drill-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	var r interface {
		Write(io.Writer)
		OK() bool
	}
	var err error
	if *cuts > 0 {
		r, err = drill.RunPowerCut(ctx, drill.PowerCutOptions{Binary: *bin, Cuts: *cuts, Cameras: *cams, Segment: *seg, WorkDir: dir, Progress: stderr})
	} else {
		r, err = drill.Run(ctx, drill.Options{Binary: *bin, Duration: *dur, Cameras: *cams, Segment: *seg, WorkDir: dir, Progress: stderr})
	}
	if err != nil {
		return err
	}
	r.Write(stdout)
	if *report != "" {
		f, err := os.Create(*report)
		if err != nil {
			return err
		}
		r.Write(f)
		f.Close()
	}
	if !r.OK() {
		return fmt.Errorf("the drill failed")
	}
	return nil
}
