package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MinIOPath finds the MinIO server that `make deps` builds.
func MinIOPath(t testing.TB) string {
	t.Helper()
	tools := os.Getenv("CCTVD_TOOLS")
	if tools == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		tools = filepath.Join(cache, "cctvd-tools")
	}
	p := filepath.Join(tools, "bin", "minio")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	t.Fatalf("MinIO is not installed in %s: run `make deps` (make test does it)", filepath.Dir(p))
	return ""
}

// ClearAWSEnv unsets every AWS_* variable for the test, so the machine's
// environment (a profile, a CA bundle, credentials) cannot change results.
func ClearAWSEnv(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
}

// MinIO is a real S3 server on 127.0.0.1 with its own data folder.
type MinIO struct {
	t                    testing.TB
	Endpoint             string
	AccessKey, SecretKey string
	port                 int
	dir                  string
	cmd                  *exec.Cmd
}

// StartMinIO starts a MinIO server and stops it when the test ends.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	ClearAWSEnv(t)
	secret := make([]byte, 12)
	rand.Read(secret)
	m := &MinIO{t: t, AccessKey: "cctvd-test", SecretKey: hex.EncodeToString(secret), dir: t.TempDir()}
	m.port = freePort(t)
	m.Endpoint = "http://127.0.0.1:" + strconv.Itoa(m.port)
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts (or restarts) the server on its port, with its data.
func (m *MinIO) Start() {
	m.t.Helper()
	if m.cmd != nil {
		return
	}
	cmd := exec.Command(MinIOPath(m.t), "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", m.port), m.dir)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey, "MINIO_BROWSER=off",
		"MINIO_UPDATE=off", "MINIO_CI_CD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start minio: %v", err)
	}
	m.cmd = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	// MinIO has no readiness event to wait on but its health endpoint.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			m.t.Fatalf("minio exited: %s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	m.t.Fatalf("minio not ready after 30s: %s", out.String())
}

// Stop stops the server; its data stays for a restart.
func (m *MinIO) Stop() {
	if m.cmd == nil {
		return
	}
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	m.cmd.Process.Wait()
	m.cmd = nil
}

// Client returns an S3 client for the server, with the root credentials.
func (m *MinIO) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
}

// CreateBucket creates a bucket.
func (m *MinIO) CreateBucket(name string) {
	m.t.Helper()
	if _, err := m.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		m.t.Fatalf("create bucket %s: %v", name, err)
	}
}

// Object is one object in a bucket.
type Object struct {
	Key  string
	Size int64
}

// List lists a bucket's objects under prefix.
func (m *MinIO) List(bucket, prefix string) []Object {
	m.t.Helper()
	var out []Object
	p := s3.NewListObjectsV2Paginator(m.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			m.t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			out = append(out, Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)})
		}
	}
	return out
}

// MultipartUploads lists the unfinished multipart uploads of key.
func (m *MinIO) MultipartUploads(bucket, key string) int {
	m.t.Helper()
	out, err := m.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		m.t.Fatalf("list multipart uploads: %v", err)
	}
	n := 0
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) == key {
			n++
		}
	}
	return n
}
