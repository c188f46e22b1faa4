package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/export"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/uploader"
)

const exportUsage = `usage:
  cctvd export [--config FILE] --camera NAME --from TIME --to TIME -o CLIP.mp4 [--feed main|sub] [--force]
  cctvd export --from-s3 [--config FILE] [S3 FLAGS] --camera NAME --from TIME --to TIME -o CLIP.mp4 [--feed main|sub] [--force]
  cctvd verify [--config FILE] [S3 FLAGS] [--full] CLIP.json

export writes one MP4 of the camera's footage in [--from, --to) and its
manifest beside it (CLIP.json). From the box, it reads the catalog and the
local files, and S3 for what is no longer on the box. With --from-s3 it
reads the bucket alone (no catalog, no box): --config is optional and only
its s3Config and awsCredentials are read (and storageConfig's
exportTempDir, savePath and minFreeGB); the S3 flags replace them. What
is downloaded goes to storageConfig.exportTempDir ($TMPDIR, /tmp): an
export that would push that filesystem under its free-space floor is
refused before it downloads.
A camera with a sub stream has two feeds: the export is of the best copy,
the main feed where it exists and the sub feed where the main copy is
gone (the manifest's "feed" and "feedNote" say which). The two feeds never
go into one MP4: a range whose best copy is of both is written as parts,
CLIP.1-main.mp4, CLIP.2-sub.mp4, ..., each with its manifest. --feed
exports one feed only.
TIME is RFC 3339: 2026-01-06T14:03:00Z, or with an offset and fractional
seconds (2026-01-06T15:03:00.5+01:00). Credentials come from the config's
awsCredentials or, without them, from the AWS environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...).

verify checks every source the manifest names against the bucket (size,
ETag and sha256 metadata; the bytes hashed when those are not enough, or
always with --full) and the clip beside the manifest; exit 1 naming what
does not match.

S3 FLAGS: --bucket, --prefix (s3Path), --endpoint, --region.
`

// s3Flags replace the config's S3 settings.
type s3Flags struct {
	bucket, prefix, endpoint, region *string
}

func addS3Flags(fs *flag.FlagSet) *s3Flags {
	return &s3Flags{
		bucket:   fs.String("bucket", "", "S3 bucket (replaces s3Config.s3Bucket)"),
		prefix:   fs.String("prefix", "", "key prefix (replaces s3Config.s3Path)"),
		endpoint: fs.String("endpoint", "", "S3-compatible endpoint URL (replaces s3Config.endpoint)"),
		region:   fs.String("region", "", "region (replaces awsCredentials.region)"),
	}
}

func (f *s3Flags) apply(c *config.Config) {
	if *f.bucket != "" {
		c.S3Config.S3Bucket = *f.bucket
	}
	if *f.prefix != "" {
		c.S3Config.S3Path = *f.prefix
	}
	if *f.endpoint != "" {
		c.S3Config.Endpoint = *f.endpoint
	}
}

// client builds the S3 client of a config, with the region flag.
func (f *s3Flags) client(ctx context.Context, cfg *config.Config) (*s3.Client, error) {
	cc := clientConfig(cfg)
	if *f.region != "" {
		cc.Region = *f.region
	}
	return uploader.NewClient(ctx, cc)
}

// cliLogger logs warnings (a local file read from S3 instead) to stderr.
func cliLogger(stderr io.Writer) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}).Level(zerolog.WarnLevel)
}

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, exportUsage) }
	cfgPath := fs.String("config", "", "config file (default "+DefaultConfigPath+"; optional with --from-s3)")
	camera := fs.String("camera", "", "camera name")
	fromArg := fs.String("from", "", "start, RFC 3339")
	toArg := fs.String("to", "", "end (excluded), RFC 3339")
	out := fs.String("o", "", "the MP4 to write; its manifest goes beside it (.json)")
	fromS3 := fs.Bool("from-s3", false, "read the bucket alone: no catalog, no box")
	force := fs.Bool("force", false, "overwrite the MP4 and manifest if they exist")
	feed := fs.String("feed", "", "main or sub: one feed of a camera with a sub stream (default: the best copy)")
	s3f := addS3Flags(fs)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cctvd export: unexpected argument %q\n%s", fs.Arg(0), exportUsage)
		return errUsage
	}
	for _, req := range []struct{ name, v string }{{"--camera", *camera}, {"--from", *fromArg}, {"--to", *toArg}, {"-o", *out}} {
		if req.v == "" {
			fmt.Fprintf(stderr, "cctvd export: %s is required\n%s", req.name, exportUsage)
			return errUsage
		}
	}
	from, err1 := time.Parse(time.RFC3339Nano, *fromArg)
	to, err2 := time.Parse(time.RFC3339Nano, *toArg)
	switch {
	case err1 != nil:
		fmt.Fprintf(stderr, "cctvd export: --from %q is not an RFC 3339 time such as 2026-01-06T14:03:00Z\n", *fromArg)
		return errUsage
	case err2 != nil:
		fmt.Fprintf(stderr, "cctvd export: --to %q is not an RFC 3339 time such as 2026-01-06T14:11:00Z\n", *toArg)
		return errUsage
	case !from.Before(to):
		fmt.Fprintln(stderr, "cctvd export: --from must be before --to")
		return errUsage
	}
	if *feed != export.FeedBest && *feed != export.FeedMain && *feed != export.FeedSub {
		fmt.Fprintf(stderr, "cctvd export: --feed %q is not main or sub\n", *feed)
		return errUsage
	}
	if !*fromS3 && (*s3f.bucket != "" || *s3f.prefix != "" || *s3f.endpoint != "" || *s3f.region != "") {
		fmt.Fprintln(stderr, "cctvd export: --bucket, --prefix, --endpoint and --region go with --from-s3; from the box, the config says where S3 is")
		return errUsage
	}
	log := cliLogger(stderr)
	distrust := &export.Distrust{}
	one := func(out, feed string, from, to time.Time) error {
		for try := 0; ; try++ {
			var clip *export.Clip
			var err error
			if *fromS3 {
				clip, err = exportFromBucket(ctx, *cfgPath, s3f, *camera, from, to, feed, log, distrust, getenv)
			} else {
				clip, err = exportFromBox(ctx, cmpOr(*cfgPath, DefaultConfigPath), *camera, from, to, feed, log, distrust, getenv)
			}
			if err != nil {
				return err
			}
			m, err := clip.Save(out, *force)
			clip.Close()
			if errors.Is(err, export.ErrMismatch) && try == 0 && !*fromS3 {
				continue // a local file no longer matches: again, with its S3 copy
			}
			if err != nil {
				return err
			}
			printExport(stdout, out, m)
			return nil
		}
	}
	err := one(*out, *feed, from, to)
	var mixed *export.MixedError
	if !errors.As(err, &mixed) {
		return err
	}
	fmt.Fprintf(stdout, "the range's best copy is of two feeds, which never go into one MP4: %d parts\n", len(mixed.Parts))
	for i, p := range mixed.Parts {
		if err := one(partPath(*out, i+1, p.Feed), p.Feed, p.From, p.To); err != nil {
			return fmt.Errorf("part %d (%s feed): %w", i+1, p.Feed, err)
		}
	}
	return nil
}

// partPath is the file of part n of an export: CLIP.mp4 → CLIP.n-feed.mp4.
func partPath(out string, n int, feed string) string {
	ext := filepath.Ext(out)
	return fmt.Sprintf("%s.%d-%s%s", strings.TrimSuffix(out, ext), n, feed, ext)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// exportFromBox exports from the catalog and the local files, and S3 for
// what is no longer on the box.
func exportFromBox(ctx context.Context, path, camera string, from, to time.Time, feed string, log zerolog.Logger, distrust *export.Distrust, getenv func(string) string) (*export.Clip, error) {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return nil, err
	}
	catPath := layout.Catalog(cfg.StorageConfig.StateDir)
	if _, err := os.Stat(catPath); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no catalog at %s: export from the bucket with --from-s3", catPath)
	}
	// Read-only: beside the daemon, and often as root, the command line
	// never writes, migrates or checkpoints the daemon's catalog.
	cat, err := catalog.OpenReadOnly(ctx, catPath, cfg.StorageConfig.SavePath)
	if errors.Is(err, catalog.ErrOlderSchema) {
		return nil, fmt.Errorf("%w: start the daemon once, or export from the bucket with --from-s3", err)
	}
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	segs, gaps, err := export.FromCatalog(ctx, cat, camera, from, to)
	if err != nil {
		return nil, err
	}
	if _, known := cfg.Camera(camera); !known && len(segs) == 0 {
		if recs, _, err := cat.List(ctx, catalog.Filter{Camera: camera, Limit: 1}); err != nil || len(recs) == 0 {
			return nil, fmt.Errorf("no camera %q in the config or the catalog", camera)
		}
	}
	segs, feed, note, err := export.SelectFeed(segs, from, to, feed)
	if err != nil {
		return nil, err
	}
	client, err := uploader.NewClient(ctx, clientConfig(cfg))
	if err != nil {
		return nil, err
	}
	temp := exportTemp(cfg)
	temp.Used = func() (int64, bool) { // the closed segments, as the catalog counts them
		t, err := cat.Totals(ctx)
		return t.Bytes, err == nil
	}
	b := &export.Builder{S3: client, Bucket: cfg.S3Config.S3Bucket, Prefix: cfg.S3Config.S3Path, Locations: cat.Locations,
		Temp: temp, Version: version, Log: log, Distrust: distrust}
	clip, err := b.Build(ctx, export.Request{Camera: camera, From: from, To: to, Segments: segs, Gaps: gaps, Made: export.MadeOnBox,
		Feed: feed, FeedNote: note})
	if errors.Is(err, export.ErrNoFootage) {
		return nil, export.Nearest(ctx, cat, camera, from, to)
	}
	return clip, err
}

// exportFromBucket exports from the bucket alone.
func exportFromBucket(ctx context.Context, path string, s3f *s3Flags, camera string, from, to time.Time, feed string, log zerolog.Logger, distrust *export.Distrust, getenv func(string) string) (*export.Clip, error) {
	cfg, err := config.LoadS3(path, getenv, s3f.apply)
	if err != nil {
		if path == "" {
			return nil, fmt.Errorf("%w (give --bucket, or --config FILE)", err)
		}
		return nil, err
	}
	client, err := s3f.client(ctx, cfg)
	if err != nil {
		return nil, err
	}
	segs, err := export.ListBucket(ctx, client, cfg.S3Config.S3Bucket, cfg.S3Config.S3Path, camera, from, to)
	if err != nil {
		return nil, err
	}
	if err := export.MarkSubFromBucket(ctx, client, segs); err != nil {
		return nil, err
	}
	segs, feed, note, err := export.SelectFeed(segs, from, to, feed)
	if err != nil {
		return nil, err
	}
	b := &export.Builder{S3: client, Bucket: cfg.S3Config.S3Bucket, Temp: exportTemp(cfg), Version: version, Log: log, Distrust: distrust}
	clip, err := b.Build(ctx, export.Request{Camera: camera, From: from, To: to, Segments: segs, Made: export.MadeFromBucket,
		Feed: feed, FeedNote: note})
	clipErr := err
	if errors.Is(err, export.ErrNoFootage) {
		err = fmt.Errorf("no footage of %s in s3://%s/%s between %s and %s", camera, cfg.S3Config.S3Bucket,
			uploader.Key(cfg.S3Config.S3Path, camera+"/"), from.Format(time.RFC3339), to.Format(time.RFC3339))
		var nf *export.NoFootageError
		if errors.As(clipErr, &nf) && nf.Damaged != "" {
			err = fmt.Errorf("%w; its segments cannot be read: %s", err, nf.Damaged)
		}
		return nil, err
	}
	return clip, err
}

// printExport says what was written.
func printExport(w io.Writer, path string, m export.Manifest) {
	reads := map[string]int{}
	for _, s := range m.Sources {
		reads[s.Read]++
	}
	fmt.Fprintf(w, "%s: %s of footage, %s to %s, from %d segments (%d local, %d from S3)\n", path,
		time.Duration(m.DurationSeconds*float64(time.Second)).Round(time.Millisecond), m.Actual.From.Format(time.RFC3339Nano),
		m.Actual.To.Format(time.RFC3339Nano), len(m.Sources), reads[export.ReadLocal], reads[export.ReadS3])
	for _, g := range m.Gaps {
		fmt.Fprintf(w, "  gap %s to %s (%s): %s\n", g.Start.Format(time.RFC3339Nano), g.End.Format(time.RFC3339Nano),
			time.Duration(g.Seconds*float64(time.Second)).Round(time.Millisecond), g.Cause)
	}
	if m.Feed != "" {
		fmt.Fprintf(w, "feed %s (%s)\n", m.Feed, m.FeedID)
	}
	if m.FeedNote != "" {
		fmt.Fprintf(w, "  note: %s\n", m.FeedNote)
	}
	fmt.Fprintf(w, "sha256 %s\nmanifest %s\n", m.Export.SHA256, export.ManifestPath(path))
}

// errVerifyFailed: something a manifest names does not match.
var errVerifyFailed = errors.New("verify: the footage does not match its manifest")

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, exportUsage) }
	cfgPath := fs.String("config", "", "config file: its s3Config and awsCredentials (optional)")
	full := fs.Bool("full", false, "download and hash every source, even when its metadata matches")
	s3f := addS3Flags(fs)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "cctvd verify: give one manifest (CLIP.json)\n%s", exportUsage)
		return errUsage
	}
	path := fs.Arg(0)
	m, err := export.ReadManifest(path)
	if err != nil {
		return err
	}
	cfg, err := config.LoadS3(*cfgPath, getenv, func(c *config.Config) {
		if c.S3Config.S3Bucket == "" {
			c.S3Config.S3Bucket = m.Bucket
		}
		s3f.apply(c)
	})
	if err != nil {
		return err
	}
	client, err := s3f.client(ctx, cfg)
	if err != nil {
		return err
	}
	checks, err := export.Verify(ctx, m, client, cfg.S3Config.S3Bucket, filepath.Dir(path), *full)
	if err != nil {
		return err
	}
	bad := 0
	for _, c := range checks {
		switch {
		case c.OK:
			fmt.Fprintf(stdout, "ok      %s (%s)\n", c.What, c.How)
		case c.Skipped:
			fmt.Fprintf(stdout, "skipped %s: %s\n", c.What, c.Problem)
		default:
			bad++
			fmt.Fprintf(stdout, "FAILED  %s (%s): %s\n", c.What, c.How, c.Problem)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%w: %d of %d checks failed", errVerifyFailed, bad, len(checks))
	}
	fmt.Fprintf(stdout, "%s: all %d sources match the bucket\n", path, len(m.Sources))
	return nil
}
