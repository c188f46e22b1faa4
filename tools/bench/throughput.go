package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

const bigSize = 500 << 20

// throughput: one 500 MB file into MinIO, by cctvd's uploader (several
// part sizes and concurrencies; hashing and verification included), by
// awscli, and read from the disk with O_DIRECT as the disk's limit.
func (b *bench) throughput(ctx context.Context) error {
	big := filepath.Join(b.opts.Work, "big.bin")
	// An MP4's first box, then random bytes: the uploader sends nothing
	// that does not start like an MP4.
	ftyp := []byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41")
	if fi, err := os.Stat(big); err != nil || fi.Size() != bigSize || !startsWith(big, ftyp) {
		f, err := os.Create(big)
		if err != nil {
			return err
		}
		if _, err := f.Write(ftyp); err != nil {
			f.Close()
			return err
		}
		if _, err := io.CopyN(f, rand.Reader, bigSize-int64(len(ftyp))); err != nil {
			f.Close()
			return err
		}
		f.Close()
	}
	mbps := func(d time.Duration) float64 { return float64(bigSize) / (1 << 20) / d.Seconds() }

	// The disk's limit: reading the file from the disk itself (O_DIRECT),
	// not from the page cache the uploads read it from.
	var read []float64
	for range b.opts.Repeats {
		start := time.Now()
		if out, err := exec.Command("dd", "if="+big, "of=/dev/null", "bs=4M", "iflag=direct").CombinedOutput(); err != nil {
			return fmt.Errorf("dd: %v %s", err, out)
		}
		read = append(read, mbps(time.Since(start)))
	}
	readLimit := median(read)

	var awsRates []float64
	awsPath, awsErr := exec.LookPath("aws")
	if awsErr == nil {
		for rep := range b.opts.Repeats {
			key := fmt.Sprintf("s3://bench/awscli/%d.bin", rep)
			cmd := exec.Command(awsPath, "--endpoint-url", b.minio.Endpoint, "s3", "cp", "--no-progress", big, key)
			cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+b.minio.AccessKey, "AWS_SECRET_ACCESS_KEY="+b.minio.SecretKey,
				"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("aws s3 cp: %v %s", err, out)
			}
			awsRates = append(awsRates, mbps(time.Since(start)))
			b.deleteObject(fmt.Sprintf("awscli/%d.bin", rep))
		}
	}

	settings := []struct {
		part        int64
		concurrency int
	}{{16 << 20, 4}, {64 << 20, 4}, {16 << 20, 8}, {8 << 20, 4}}
	for _, s := range settings {
		var rates []float64
		for rep := range b.opts.Repeats {
			d, err := b.uploadOnce(ctx, big, s.part, s.concurrency, rep)
			if err != nil {
				return err
			}
			rates = append(rates, mbps(d))
		}
		name := fmt.Sprintf("upload 500 MB: cctvd uploader, %d MiB parts × %d", s.part>>20, s.concurrency)
		if s.part == 16<<20 && s.concurrency == 4 {
			name += " (default)"
		}
		r := median(rates)
		if awsErr == nil {
			aws := median(awsRates)
			b.add(Row{Name: name + " vs awscli", Value: fmt.Sprintf("%.0f MB/s", r), Baseline: fmt.Sprintf("awscli %.0f MB/s", aws),
				Ratio: fmt.Sprintf("%.2f", r/aws), Target: "≥ 2× awscli", Met: met(r >= 2*aws)})
		} else {
			b.add(Row{Name: name + " vs awscli", Value: fmt.Sprintf("%.0f MB/s", r), Baseline: "awscli not installed", Ratio: "-", Target: "≥ 2× awscli", Met: "-"})
		}
		b.add(Row{Name: name + " vs reading the file", Value: fmt.Sprintf("%.0f MB/s", r), Baseline: fmt.Sprintf("disk read %.0f MB/s", readLimit),
			Ratio: fmt.Sprintf("%.2f", r/readLimit), Target: "≥ 0.9× read", Met: met(r >= 0.9*readLimit)})
	}
	return nil
}

// uploadOnce uploads the file as a segment through cctvd's catalog and
// uploader and returns the time from the attempt's start to verification.
func (b *bench) uploadOnce(ctx context.Context, big string, part int64, concurrency, rep int) (time.Duration, error) {
	save, err := os.MkdirTemp(b.opts.Work, "tp")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(save)
	start := time.Date(2026, 1, 6, 12, 0, rep, 0, time.UTC)
	rel := layout.SegmentRel("big", start, segment.Name("big", "bench", start, start.Add(time.Hour), 0))
	p := filepath.Join(save, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.Link(big, p); err != nil {
		return 0, err
	}
	cat, err := catalog.Open(ctx, layout.Catalog(layout.DefaultStateDir(save)), save, nil)
	if err != nil {
		return 0, err
	}
	defer cat.Close()
	key := uploader.Key("throughput", rel)
	if _, err := cat.Add(ctx, segment.Segment{Camera: "big", FeedID: "bench", Start: start, End: start.Add(time.Hour), Path: p, Size: bigSize}, key); err != nil {
		return 0, err
	}
	client, err := uploader.NewClient(ctx, uploader.ClientConfig{Region: "us-east-1", Endpoint: b.minio.Endpoint, PathStyle: true,
		AccessKeyID: b.minio.AccessKey, SecretAccessKey: b.minio.SecretKey})
	if err != nil {
		return 0, err
	}
	done := make(chan time.Duration, 1)
	u := uploader.New(uploader.Config{Bucket: "bench", PartSize: part, PartConcurrency: concurrency},
		uploader.Deps{Log: zerolog.Nop(), Catalog: cat, S3: client, OnUploaded: func(_ catalog.Record, took time.Duration) { done <- took }})
	uctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { u.Run(uctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	select {
	case took := <-done:
		b.deleteObject(key)
		return took, nil
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("upload not done: %+v", u.Status())
	}
}

// startsWith says whether the file at path starts with prefix.
func startsWith(path string, prefix []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(prefix))
	_, err = io.ReadFull(f, head)
	return err == nil && bytes.Equal(head, prefix)
}

func (b *bench) deleteObject(key string) {
	b.minio.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("bench"), Key: aws.String(key)})
}
