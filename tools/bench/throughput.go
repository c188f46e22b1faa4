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
	"github.com/cctvd/cctvd/internal/filesum"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

const bigSize = 500 << 20

// throughput: one 500 MB file uploaded by cctvd's uploader (several part
// sizes and concurrencies; verification included) into MinIO and into a
// second target that is not the ceiling (sinkS3: keeps no bytes, checks
// every checksum), against awscli into the same MinIO and against reading
// the file: from the page cache, as the upload reads a segment ffmpeg just
// wrote, and from the disk itself (O_DIRECT). The file's row carries its
// checksums, as the segmenter takes them when a segment closes (one read of
// the page cache, measured in its own row: SHA-256, CRC-64/NVME whole and
// by 1 MiB block, whose blocks give each part's CRC), so the upload reads
// the file once; a row without them (made by an older cctvd) is read whole first,
// and has a row of its own. Each repeat runs every side once, in turn, so
// that the load on the box is the same for all; medians over repeats.
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
	sums, err := filesum.File(big) // warms the page cache too
	if err != nil {
		return err
	}
	sink, err := startSink()
	if err != nil {
		return err
	}
	defer sink.stop()
	awsPath, awsErr := exec.LookPath("aws")

	settings := []struct {
		part        int64
		concurrency int
	}{{16 << 20, 4}, {64 << 20, 4}, {16 << 20, 8}, {8 << 20, 4}}
	type side struct{ minio, sink, bare []float64 }
	up := make([]side, len(settings))
	var direct, cached, closeHash, awsRates, oldRow []float64
	for rep := range b.opts.Repeats {
		// The disk's limit: reading the file from the disk itself
		// (O_DIRECT), not from the page cache the uploads read it from.
		start := time.Now()
		if out, err := exec.Command("dd", "if="+big, "of=/dev/null", "bs=4M", "iflag=direct").CombinedOutput(); err != nil {
			return fmt.Errorf("dd: %v %s", err, out)
		}
		direct = append(direct, mbps(time.Since(start)))
		// Reading it as the upload does: buffered, from the page cache,
		// 256 KiB at a time, one reader per part sent at once (4).
		d, err := cachedRead(big, 4)
		if err != nil {
			return err
		}
		cached = append(cached, mbps(d))
		// What the segmenter does as a segment closes: one read for its
		// SHA-256 and CRC-64/NVME.
		start = time.Now()
		if _, err := filesum.File(big); err != nil {
			return err
		}
		closeHash = append(closeHash, mbps(time.Since(start)))
		if awsErr == nil {
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
		for i, s := range settings {
			d, err := b.uploadOnce(ctx, big, sums, s.part, s.concurrency, rep, b.minio.Endpoint)
			if err != nil {
				return err
			}
			up[i].minio = append(up[i].minio, mbps(d))
			d, err = b.uploadOnce(ctx, big, sums, s.part, s.concurrency, rep, sink.endpoint())
			if err != nil {
				return fmt.Errorf("into the sink: %w", err)
			}
			sink.forget()
			up[i].sink = append(up[i].sink, mbps(d))
			d, err = bareSend(ctx, sink.endpoint(), fmt.Sprintf("bare/%d-%d.bin", rep, i), big, sums, s.part, s.concurrency)
			if err != nil {
				return fmt.Errorf("bare into the sink: %w", err)
			}
			sink.forget()
			up[i].bare = append(up[i].bare, mbps(d))
		}
		d, err = b.uploadOnce(ctx, big, filesum.Sums{}, settings[0].part, settings[0].concurrency, rep, b.minio.Endpoint)
		if err != nil {
			return err
		}
		oldRow = append(oldRow, mbps(d))
	}
	if sink.refused > 0 {
		return fmt.Errorf("the sink refused %d bodies whose bytes did not match their checksum", sink.refused)
	}
	readDisk, readCache := median(direct), median(cached)
	counted := "upload: the uploader's attempt, from its start to S3's answer to the HEAD that verifies it (MB/s of the file)"
	b.logf("%s; reading: dd iflag=direct bs=4M (disk), 4 readers × 256 KiB buffered of the same file (page cache)", counted)
	b.add(Row{Name: "hash at close: SHA-256 + CRC-64/NVME of the file in one read (the segmenter, from the page cache)",
		Value: fmt.Sprintf("%.0f MB/s", median(closeHash)), Baseline: fmt.Sprintf("page-cache read %.0f MB/s", readCache),
		Ratio: fmt.Sprintf("%.2f", median(closeHash)/readCache), Target: "-", Met: "-"})
	for i, s := range settings {
		name := fmt.Sprintf("upload 500 MB: cctvd uploader, %d MiB parts × %d", s.part>>20, s.concurrency)
		if s.part == 16<<20 && s.concurrency == 4 {
			name += " (default)"
		}
		r, rs := median(up[i].minio), median(up[i].sink)
		if awsErr == nil {
			aws := median(awsRates)
			b.add(Row{Name: name + " into MinIO vs awscli", Value: fmt.Sprintf("%.0f MB/s", r), Baseline: fmt.Sprintf("awscli %.0f MB/s", aws),
				Ratio: fmt.Sprintf("%.2f", r/aws), Target: "≥ 2× awscli", Met: met(r >= 2*aws)})
		} else {
			b.add(Row{Name: name + " into MinIO vs awscli", Value: fmt.Sprintf("%.0f MB/s", r), Baseline: "awscli not installed", Ratio: "-", Target: "≥ 2× awscli", Met: "-"})
		}
		b.add(Row{Name: name + " into MinIO vs reading the file (disk, O_DIRECT)", Value: fmt.Sprintf("%.0f MB/s", r),
			Baseline: fmt.Sprintf("disk read %.0f MB/s", readDisk), Ratio: fmt.Sprintf("%.2f", r/readDisk), Target: "- (MinIO is the ceiling)", Met: "-"})
		b.add(Row{Name: name + " into the sink target (not the ceiling) vs reading the file (disk, O_DIRECT)", Value: fmt.Sprintf("%.0f MB/s", rs),
			Baseline: fmt.Sprintf("disk read %.0f MB/s", readDisk), Ratio: fmt.Sprintf("%.2f", rs/readDisk), Target: "≥ 0.9× read", Met: met(rs >= 0.9*readDisk)})
		b.add(Row{Name: name + " into the sink target vs reading the file (page cache, as the upload reads it)", Value: fmt.Sprintf("%.0f MB/s", rs),
			Baseline: fmt.Sprintf("page-cache read %.0f MB/s", readCache), Ratio: fmt.Sprintf("%.2f", rs/readCache), Target: "≥ 0.9× read", Met: met(rs >= 0.9*readCache)})
		rb := median(up[i].bare)
		b.add(Row{Name: name + " into the sink target vs the same parts PUT by a bare HTTP client (same file, CRC headers, concurrency, server)", Value: fmt.Sprintf("%.0f MB/s", rs),
			Baseline: fmt.Sprintf("bare %.0f MB/s", rb), Ratio: fmt.Sprintf("%.2f", rs/rb), Target: "≥ 0.9× bare", Met: met(rs >= 0.9*rb)})
	}
	r, old := median(up[0].minio), median(oldRow)
	b.add(Row{Name: "upload 500 MB into MinIO, a row without checksums (an older cctvd's: read whole first) vs one with (read once)",
		Value: fmt.Sprintf("%.0f MB/s", old), Baseline: fmt.Sprintf("%.0f MB/s", r), Ratio: fmt.Sprintf("%.2f", old/r), Target: "-", Met: "-"})
	return nil
}

// cachedRead reads the file at path from the page cache, as the upload
// does: readers at once, each over its own stretch, 256 KiB at a time.
func cachedRead(path string, readers int) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	stretch := (size + int64(readers) - 1) / int64(readers)
	errs := make(chan error, readers)
	start := time.Now()
	for i := range readers {
		go func() {
			buf := make([]byte, 256<<10)
			_, err := io.CopyBuffer(io.Discard, io.NewSectionReader(f, int64(i)*stretch, stretch), buf)
			errs <- err
		}()
	}
	for range readers {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// uploadOnce uploads the file as a segment through cctvd's catalog and
// uploader and returns the time from the attempt's start to verification.
// The row carries sums (as the segmenter takes them) unless they are zero.
func (b *bench) uploadOnce(ctx context.Context, big string, sums filesum.Sums, part int64, concurrency, rep int, endpoint string) (time.Duration, error) {
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
	if _, err := cat.Add(ctx, segment.Segment{Camera: "big", FeedID: "bench", Start: start, End: start.Add(time.Hour), Path: p, Size: bigSize,
		SHA256: sums.SHA256, CRC64: sums.CRC64, CRC64Blocks: filesum.EncodeBlocks(sums.Blocks)}, key); err != nil {
		return 0, err
	}
	client, err := uploader.NewClient(ctx, uploader.ClientConfig{Region: "us-east-1", Endpoint: endpoint, PathStyle: true,
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
