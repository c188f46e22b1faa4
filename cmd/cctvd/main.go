// Command cctvd records IP cameras through ffmpeg into named segment files,
// uploads them to S3, keeps the local disk under its limit and is run and
// watched through a REST API.
//
//	cctvd run --config /etc/cctvd/config.json
//	cctvd check-config --config /etc/cctvd/config.json
//	cctvd export --config /etc/cctvd/config.json --camera door --from 2026-01-06T14:03:00Z --to 2026-01-06T14:11:00Z -o clip.mp4
//	cctvd verify clip.json
//	cctvd probe-camera --ip 192.168.0.64 --user admin --resolution 1920x1080 --fps 2
//	cctvd discover --interface eth0
//	cctvd version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/config"
)

// version is stamped by the build: -ldflags "-X main.version=...".
var version = "dev"

// DefaultConfigPath is where the config is read from without --config.
const DefaultConfigPath = "/etc/cctvd/config.json"

// errUsage marks a command-line mistake: exit code 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv, time.Now)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "cctvd:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  cctvd run [--config FILE]           record, upload and serve the API until SIGINT/SIGTERM
  cctvd check-config [--config FILE]  print the validated config with secrets masked, or its errors
  cctvd export [--from-s3] ...        one MP4 of a camera's footage in a range, and its manifest
  cctvd verify CLIP.json              check an export's sources against the bucket
  cctvd probe-camera --ip A [--port N] [--onvif-port N] --user U [--password P]
                     [--resolution WxH --fps F] [--discovery auto|onvif|paths]
                                      what a camera offers (ONVIF profiles, stream URIs, known
                                      paths) and what cctvd would record; the password may come
                                      from ` + PasswordEnv + ` instead
  cctvd discover [--interface IF] [--timeout 3s]
                                      list the ONVIF devices that answer a WS-Discovery probe
  cctvd version                       print the version

FILE defaults to ` + DefaultConfigPath + `. cctvd export --help says more of export and verify.
`

// run is main without the process: it returns instead of exiting. now is
// the wall clock the daemon names segments and records times on.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, now func() time.Time) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version", "--version":
		fmt.Fprintln(stdout, "cctvd", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "probe-camera":
		return probeCamera(ctx, args, stdout, stderr, getenv)
	case "discover":
		return discover(ctx, args, stdout, stderr)
	case "run", "check-config":
	case "export":
		return runExport(ctx, args, stdout, stderr, getenv)
	case "verify":
		return runVerify(ctx, args, stdout, stderr, getenv)
	default:
		fmt.Fprintf(stderr, "cctvd: unknown command %q\n%s", cmd, usage)
		return errUsage
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", DefaultConfigPath, "config file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cctvd %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return errUsage
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return err
	}
	if cmd == "check-config" {
		out, err := cfg.MaskedJSON()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", out)
		return nil
	}
	return runDaemon(ctx, cfg, *path, stdout, getenv, now)
}
