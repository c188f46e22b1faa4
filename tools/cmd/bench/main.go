// Command bench runs cctvd's benchmarks (package bench) and prints one
// table, also written to a file.
//
//	go run ./tools/cmd/bench -cctvd bin/cctvd -out tools/bench/results.md
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/tools/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("cctvd", "bin/cctvd", "the cctvd binary")
	out := fs.String("out", "tools/bench/results.md", "write the table here too")
	work := fs.String("work", "", "work folder (default: a new temporary one, removed after)")
	repeats := fs.Int("repeats", 3, "runs per measurement (medians)")
	only := fs.String("only", "", "run only these steps (comma-separated: overhead,sync,latency,throughput,modes,transcode,retention,catalog,scale,export,live,uplink,activity,firstframe,feeds,reload)")
	cases := fs.String("overhead", "", "run only these cases of the overhead step (cameras/segment seconds, comma-separated: 16/10,64/10,64/600)")
	profile := fs.String("profile", "", "write CPU profiles of cctvd (perf) in the overhead step to this folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := *work
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cctvd-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	start := time.Now()
	rows, err := bench.Run(ctx, bench.Options{Cctvd: *bin, Work: dir, Progress: stderr, Repeats: *repeats, Only: *only, Profile: *profile, OverheadCases: *cases})
	bench.Write(stdout, rows, time.Since(start))
	if err != nil {
		return err
	}
	note := fmt.Sprintf("Run took %v.", time.Since(start).Round(time.Second))
	if *only != "" {
		// Some steps: their rows replace theirs in the table, the others stay.
		if old, err := os.ReadFile(*out); err == nil {
			rows = bench.Merge(bench.ReadTable(bytes.NewReader(old)), rows)
			note = fmt.Sprintf("Steps %s re-run on %s (%v); the other rows from an earlier run.", *only, time.Now().UTC().Format("2006-01-02"),
				time.Since(start).Round(time.Second))
		}
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	bench.WriteNote(f, rows, note)
	return nil
}
