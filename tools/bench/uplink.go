package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/countproxy"
	"github.com/cctvd/cctvd/internal/fixture"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// uplink: the upload cap, resume after a SIGKILL, and a shaped uplink.
//
//   - cctvd's uploader capped at 20 Mbit/s into MinIO: the rate on the wire
//     over 60 s (counted at a proxy) and the goodput of a 150 MB file, from
//     the attempt's start to verification, against the cap;
//   - the real cctvd SIGKILLed half way through a 200 MB multipart upload
//     and started again: the bytes sent again, counted at a proxy, against
//     part size × part concurrency;
//   - a shaped uplink inside a network namespace the bench makes: tbf at
//     10 Mbit/s on the veth towards it, 1 % of the packets that reach it
//     dropped by nftables, and 40 ms of round trip added by a delaying
//     proxy in front (this kernel has no netem): the goodput of cctvd's
//     uploader and of `aws s3 cp` through the same link, against the rate.
func (b *bench) uplink(ctx context.Context) error {
	if err := b.uplinkCap(ctx); err != nil {
		return err
	}
	if err := b.uplinkKill(ctx); err != nil {
		return err
	}
	return b.uplinkShaped(ctx)
}

// randomMP4 writes size bytes at path: an MP4's first box, then random
// bytes (the uploader's cheap check; rows the uploader saw close are not
// decoded).
func randomMP4(path string, size int64) error {
	os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ftyp := []byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41")
	if _, err := f.Write(ftyp); err != nil {
		return err
	}
	_, err = io.CopyN(f, rand.Reader, size-int64(len(ftyp)))
	return err
}

// pacedUpload uploads one file of size bytes through cctvd's catalog and
// uploader, its client dialing endpoint, writing through lim; it returns
// the time from the attempt's start to verification.
func (b *bench) pacedUpload(ctx context.Context, name string, size int64, endpoint string, lim *uploader.Limiter, part int64, parts int) (time.Duration, error) {
	save, err := os.MkdirTemp(b.opts.Work, "uplink")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(save)
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	rel := layout.SegmentRel(name, start, segment.Name(name, "bench", start, start.Add(time.Hour), 0))
	p := filepath.Join(save, rel)
	if err := randomMP4(p, size); err != nil {
		return 0, err
	}
	cat, err := catalog.Open(ctx, layout.Catalog(layout.DefaultStateDir(save)), save, nil)
	if err != nil {
		return 0, err
	}
	defer cat.Close()
	key := uploader.Key("uplink", rel)
	if _, err := cat.Add(ctx, segment.Segment{Camera: name, FeedID: "bench", Start: start, End: start.Add(time.Hour), Path: p, Size: size}, key); err != nil {
		return 0, err
	}
	client, err := uploader.NewClient(ctx, uploader.ClientConfig{Region: "us-east-1", Endpoint: endpoint, PathStyle: true,
		AccessKeyID: b.minio.AccessKey, SecretAccessKey: b.minio.SecretKey, Limiter: lim})
	if err != nil {
		return 0, err
	}
	done := make(chan time.Duration, 1)
	u := uploader.New(uploader.Config{Bucket: "bench", Prefix: "uplink", PartSize: part, PartConcurrency: parts},
		uploader.Deps{Log: zerolog.Nop(), Catalog: cat, S3: client, Limiter: lim, OnUploaded: func(_ catalog.Record, took time.Duration) { done <- took }})
	uctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { u.Run(uctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	select {
	case took := <-done:
		b.deleteObject(key)
		return took, nil
	case <-time.After(10 * time.Minute):
		return 0, fmt.Errorf("upload not done: %+v", u.Status())
	}
}

func (b *bench) uplinkCap(ctx context.Context) error {
	proxy, err := countproxy.Start(strings.TrimPrefix(b.minio.Endpoint, "http://"))
	if err != nil {
		return err
	}
	defer proxy.Close()
	const capMbps, size = 20, 160e6
	lim := uploader.NewLimiter()
	lim.SetMbps(capMbps)
	// The rate on the wire over 60 s, from 2 s into the upload.
	wire := make(chan float64, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		proxy.WaitFor(wctx, func(c countproxy.Counts) bool { return c.Up > 0 })
		time.Sleep(2 * time.Second) // a measurement's window, not a wait for an event
		from, t0 := proxy.Counts().Up, time.Now()
		time.Sleep(60 * time.Second)
		wire <- float64(proxy.Counts().Up-from) * 8 / 1e6 / time.Since(t0).Seconds()
	}()
	took, err := b.pacedUpload(ctx, "cap", size, "http://"+proxy.Addr(), lim, 16<<20, 4)
	if err != nil {
		return err
	}
	w := <-wire
	good := size * 8 / 1e6 / took.Seconds()
	b.add(Row{Name: "uplink: cap 20 Mbit/s, bytes on the wire over 60 s (counted at a proxy)", Value: fmt.Sprintf("%.2f Mbit/s", w),
		Baseline: "cap 20 Mbit/s", Ratio: fmt.Sprintf("%.3f", w/capMbps), Target: "within ±5 %", Met: met(w >= 0.95*capMbps && w <= 1.05*capMbps)})
	b.add(Row{Name: "uplink: cap 20 Mbit/s, goodput of 160 MB (hashing, parts, completion, HEAD)", Value: fmt.Sprintf("%.2f Mbit/s", good),
		Baseline: "cap 20 Mbit/s", Ratio: fmt.Sprintf("%.3f", good/capMbps), Target: "within ±5 %", Met: met(good >= 0.95*capMbps && good <= 1.05*capMbps)})
	return nil
}

// runCctvd runs cctvd and hands each JSON log line to lines.
func (b *bench) runCctvd(cfg string, lines chan<- map[string]any) (*exec.Cmd, error) {
	cmd := exec.Command(b.opts.Cctvd, "run", "--config", cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case lines <- m:
				default:
				}
			}
		}
	}()
	return cmd, nil
}

func (b *bench) uplinkKill(ctx context.Context) error {
	proxy, err := countproxy.Start(strings.TrimPrefix(b.minio.Endpoint, "http://"))
	if err != nil {
		return err
	}
	defer proxy.Close()
	const size, part, parts = 200e6, 16 << 20, 4
	dir, err := os.MkdirTemp(b.opts.Work, "kill")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	save := filepath.Join(dir, "rec")
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	name := segment.Name("door", "bench", start, start.Add(10*time.Minute), 0)
	path := filepath.Join(save, layout.DayRel("door", start), name)
	// A real MP4 head (cctvd decodes a file it did not see close), padded.
	os.MkdirAll(filepath.Dir(path), 0o755)
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=5",
		"-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-pix_fmt", "yuv420p", "-f", "mp4",
		"-movflags", "+frag_keyframe+empty_moov+default_base_moof", path).CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	fi, _ := f.Stat()
	_, err = io.CopyN(f, rand.Reader, size-fi.Size())
	f.Close()
	if err != nil {
		return err
	}
	port, _ := freePort()
	cfg := fmt.Sprintf(`{
  "cameras": [{"cameraName": "door", "streamUrl": "rtsp://127.0.0.1:9/none", "frameRate": 5, "resolution": "640x360", "videoDuration": 600, "videoFeedId": "bench", "discovery": "off"}],
  "s3Config": {"s3Bucket": "bench", "s3Path": "kill", "endpoint": %q, "maxUploadMbps": 80, "partSizeMB": %d, "partConcurrency": %d},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearAfterUpload": false, "clearWhenFilePathReachGB": 50},
  "api": {"listen": "127.0.0.1:%d"},
  "log": {"format": "json"}
}`, "http://"+proxy.Addr(), part>>20, parts, b.minio.AccessKey, b.minio.SecretKey, save, port)
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	lines := make(chan map[string]any, 4096)
	cmd, err := b.runCctvd(cfgPath, lines)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := proxy.WaitFor(wctx, func(c countproxy.Counts) bool { return c.Up >= size/2 }); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("half the file never went up")
	}
	cmd.Process.Signal(unix.SIGKILL)
	cmd.Wait()
	before := proxy.Counts().Up
	lines = make(chan map[string]any, 4096)
	cmd, err = b.runCctvd(cfgPath, lines)
	if err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(unix.SIGTERM); cmd.Wait() }()
	kept := -1
	for done := false; !done; {
		select {
		case m := <-lines:
			switch {
			case m["message"] == "multipart upload reconciled with S3" && m["segment"] == name:
				kept = int(m["partsKept"].(float64))
			case m["message"] == "uploaded and verified" && m["segment"] == name:
				done = true
			}
		case <-wctx.Done():
			return fmt.Errorf("the resumed upload did not finish")
		}
	}
	total := proxy.Counts().Up // before the kill and after the restart
	again := float64(total - size)
	b.logf("uplink kill: %d bytes sent before the kill, %d after", before, total-before)
	bound := float64(part * parts)
	b.add(Row{Name: fmt.Sprintf("uplink: 200 MB multipart SIGKILLed half way, bytes sent again after the restart (%d of %d parts kept)", kept, (int64(size)+part-1)/part),
		Value: fmt.Sprintf("%.1f MB", again/1e6), Baseline: fmt.Sprintf("part × concurrency %.1f MB", bound/1e6),
		Ratio: fmt.Sprintf("%.2f", again/bound), Target: "≤ part size × part concurrency", Met: met(again <= bound)})
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shapedLink is a network namespace joined to this one by a veth pair,
// with a MinIO of its own inside: tbf shapes the veth towards it,
// nftables drops a share of the packets that reach it, and a delaying
// proxy on loopback stands in front of it.
type shapedLink struct {
	ns, hostIf, nsIf, hostIP, nsIP string
	minio                          *exec.Cmd
	front                          *countproxy.Proxy // on loopback, adding the round trip
}

func ipCmd(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *bench) newShapedLink(ctx context.Context, rateMbit, lossPercent int, rtt time.Duration) (*shapedLink, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the shaped uplink needs root (network namespaces, tc)")
	}
	id := make([]byte, 2)
	rand.Read(id)
	h := hex.EncodeToString(id)
	l := &shapedLink{ns: "cctvd-bench-" + h, hostIf: "cvb" + h + "h", nsIf: "cvb" + h + "n",
		hostIP: fmt.Sprintf("10.233.%d.1", int(id[0])%250+1), nsIP: fmt.Sprintf("10.233.%d.2", int(id[0])%250+1)}
	steps := [][]string{
		{"ip", "netns", "add", l.ns},
		{"ip", "link", "add", l.hostIf, "type", "veth", "peer", "name", l.nsIf, "netns", l.ns},
		{"ip", "addr", "add", l.hostIP + "/30", "dev", l.hostIf},
		{"ip", "link", "set", l.hostIf, "up"},
		{"ip", "-n", l.ns, "addr", "add", l.nsIP + "/30", "dev", l.nsIf},
		{"ip", "-n", l.ns, "link", "set", l.nsIf, "up"},
		{"ip", "-n", l.ns, "link", "set", "lo", "up"},
		// Segments as on a real link (no 64 KiB super-packets past the
		// bucket), and the uplink: what leaves towards the namespace.
		{"ethtool", "-K", l.hostIf, "tso", "off", "gso", "off"},
		{"tc", "qdisc", "add", "dev", l.hostIf, "root", "tbf", "rate", fmt.Sprintf("%dmbit", rateMbit), "burst", "64kbit", "latency", "100ms"},
	}
	if lossPercent > 0 {
		steps = append(steps,
			[]string{"ip", "netns", "exec", l.ns, "nft", "add", "table", "inet", "cctvdbench"},
			[]string{"ip", "netns", "exec", l.ns, "nft", "add", "chain", "inet", "cctvdbench", "input", "{ type filter hook input priority 0; }"},
			[]string{"ip", "netns", "exec", l.ns, "nft", "add", "rule", "inet", "cctvdbench", "input", "meta", "l4proto", "tcp",
				"numgen", "random", "mod", "100", "<", fmt.Sprint(lossPercent), "drop"})
	}
	for _, s := range steps {
		if s[0] == "ethtool" {
			if _, err := exec.LookPath("ethtool"); err != nil {
				continue // without it, the veth's offloads stay as they are
			}
		}
		if err := ipCmd(s...); err != nil {
			l.close()
			return nil, err
		}
	}
	bin, err := fixture.MinIOPath()
	if err != nil {
		l.close()
		return nil, err
	}
	l.minio = exec.Command("ip", "netns", "exec", l.ns, bin, "server", "--quiet", "--address", l.nsIP+":9000", filepath.Join(b.opts.Work, "minio-"+h))
	l.minio.Env = append(os.Environ(), "MINIO_ROOT_USER="+b.minio.AccessKey, "MINIO_ROOT_PASSWORD="+b.minio.SecretKey, "MINIO_BROWSER=off",
		"MINIO_UPDATE=off", "MINIO_CI_CD=1")
	l.minio.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := l.minio.Start(); err != nil {
		l.close()
		return nil, err
	}
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + l.nsIP + ":9000"), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(b.minio.AccessKey, b.minio.SecretKey, "")})
	for deadline := time.Now().Add(time.Minute); ; {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := client.CreateBucket(cctx, &s3.CreateBucketInput{Bucket: aws.String("bench")})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			l.close()
			return nil, fmt.Errorf("the namespace's MinIO: %w", err)
		}
		time.Sleep(200 * time.Millisecond) // MinIO has no readiness event to wait on
	}
	fl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.close()
		return nil, err
	}
	l.front = countproxy.Serve(fl, l.nsIP+":9000", rtt/2)
	return l, nil
}

func (l *shapedLink) endpoint() string { return "http://" + l.front.Addr() }

func (l *shapedLink) close() {
	if l.front != nil {
		l.front.Close()
	}
	if l.minio != nil && l.minio.Process != nil {
		l.minio.Process.Kill()
		l.minio.Wait()
	}
	exec.Command("ip", "link", "del", l.hostIf).Run()
	exec.Command("ip", "netns", "del", l.ns).Run()
}

func (b *bench) uplinkShaped(ctx context.Context) error {
	const rate, loss = 10, 1
	const size = 40e6
	link, err := b.newShapedLink(ctx, rate, loss, 40*time.Millisecond)
	if err != nil {
		return err
	}
	defer link.close()
	what := fmt.Sprintf("%d Mbit/s tbf, %d %% loss (nftables), 40 ms RTT (delaying proxy: request round trips; the shaped TCP flow itself has none, no netem here)", rate, loss)
	took, err := b.pacedUpload(ctx, "shaped", size, link.endpoint(), uploader.NewLimiter(), 16<<20, 4)
	if err != nil {
		return err
	}
	good := size * 8 / 1e6 / took.Seconds()
	b.add(Row{Name: "uplink shaped " + what + ": cctvd goodput of 40 MB vs the shaped rate", Value: fmt.Sprintf("%.2f Mbit/s", good),
		Baseline: fmt.Sprintf("shaped %d Mbit/s", rate), Ratio: fmt.Sprintf("%.2f", good/rate), Target: "-", Met: "-"})
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		b.add(Row{Name: "uplink shaped: cctvd goodput vs aws s3 cp", Value: fmt.Sprintf("%.2f Mbit/s", good), Baseline: "awscli not installed", Ratio: "-", Target: "-", Met: "-"})
		return nil
	}
	file := filepath.Join(b.opts.Work, "shaped.bin")
	if err := randomMP4(file, size); err != nil {
		return err
	}
	defer os.Remove(file)
	cmd := exec.CommandContext(ctx, awsPath, "--endpoint-url", link.endpoint(), "s3", "cp", "--no-progress", file, "s3://bench/uplink/awscli.bin")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+b.minio.AccessKey, "AWS_SECRET_ACCESS_KEY="+b.minio.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("aws s3 cp: %v %s", err, out)
	}
	awsGood := size * 8 / 1e6 / time.Since(start).Seconds()
	b.deleteObject("uplink/awscli.bin")
	b.add(Row{Name: "uplink shaped " + what + ": cctvd goodput vs aws s3 cp", Value: fmt.Sprintf("%.2f Mbit/s", good),
		Baseline: fmt.Sprintf("aws s3 cp %.2f Mbit/s", awsGood), Ratio: fmt.Sprintf("%.2f", good/awsGood), Target: "-", Met: "-"})
	return nil
}
