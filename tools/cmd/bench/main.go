// Command bench runs cctvd's benchmarks (package bench) and prints one
// table, also written to a file.
//
//	go run ./tools/cmd/bench -cctvd bin/cctvd -out tools/bench/results.md
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
	only := fs.String("only", "", "run only these steps (comma-separated: overhead,sync,latency,throughput,modes,retention,catalog,scale,export,activity)")
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
	rows, err := bench.Run(ctx, bench.Options{Cctvd: *bin, Work: dir, Progress: stderr, Repeats: *repeats, Only: *only})
	bench.Write(stdout, rows, time.Since(start))
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	bench.Write(f, rows, time.Since(start))
	return nil
}
