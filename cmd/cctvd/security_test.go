package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/testenv"
)

// quietConfig is a daemon config that needs nothing running: its camera
// and S3 are closed ports on 127.0.0.1. api is the "api" member.
func quietConfig(t *testing.T, savePath, api string) string {
	t.Helper()
	return fmt.Sprintf(`{
  "cameras": [{"cameraName": "c", "ipAddress": "127.0.0.1", "rtspPort": 1, "userName": "admin", "password": "12345",
    "frameRate": 1, "resolution": "640x360", "videoDuration": 10, "videoFeedId": "f"}],
  "s3Config": {"s3Bucket": "b-b-b", "endpoint": "http://127.0.0.1:1"},
  "awsCredentials": {"accessKeyId": "k", "secretAccessKey": "s3cret-value"},
  "storageConfig": {"savePath": %q, "clearWhenFilePathReachGB": 1},
  "api": %s,
  "log": {"format": "json"}
}`, savePath, api)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func status(t *testing.T, client *http.Client, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestReloadKeepsTheTokenOnAnExposedAPI is issue 14's first finding, on a
// real daemon listening on 0.0.0.0 (the test talks to it through
// 127.0.0.1): a reload to a loopback address without a token is rejected
// whole, since the listener stays on 0.0.0.0 until a restart, and the
// token still guards it.
func TestReloadKeepsTheTokenOnAnExposedAPI(t *testing.T) {
	savePath := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, cfg, quietConfig(t, savePath, fmt.Sprintf(`{"listen": "0.0.0.0:0", "token": %q}`, apiToken)))
	d := startDaemon(t, "run", "--config", cfg)
	line, _ := d.await(0, 30*time.Second, msgIs("API listening"))
	_, port, _ := net.SplitHostPort(line["address"].(string))
	base := "http://127.0.0.1:" + port
	// A listener reachable from the network without TLS is warned about.
	d.await(0, 10*time.Second, func(m map[string]any) bool {
		return m["level"] == "warn" && strings.Contains(fmt.Sprint(m["message"]), "without TLS")
	})
	if code := status(t, http.DefaultClient, base+"/api/v1/cameras", ""); code != 401 {
		t.Fatalf("before the reload, without the token: %d", code)
	}
	// The camera's short password is named, not shown.
	short, _ := d.await(0, 10*time.Second, func(m map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(m["message"]), "these secrets are shorter than 8 characters")
	})
	if fmt.Sprint(short["fields"]) != "[cameras[0].password]" {
		t.Errorf("short secrets named: %v", short["fields"])
	}

	// The reproduction: loopback, no token, SIGHUP.
	writeFile(t, cfg, quietConfig(t, savePath, `{"listen": "127.0.0.1:0"}`))
	mark := d.mark()
	d.cmd.Process.Signal(syscall.SIGHUP)
	rejected, _ := d.await(mark, 10*time.Second, func(m map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(m["message"]), "reload: config rejected")
	})
	if msg := fmt.Sprint(rejected["message"]); !strings.Contains(msg, "api.token: is required while the API listens on 0.0.0.0:"+port) {
		t.Errorf("the rejection does not say why: %s", msg)
	}
	for _, path := range []string{"/api/v1/cameras", "/api/v1/logs", "/api/v1/status"} {
		if code := status(t, http.DefaultClient, base+path, ""); code != 401 {
			t.Errorf("after the reload, %s without the token: %d, want 401", path, code)
		}
	}
	// The API's reload says the same, with the token still needed for it.
	c := &client{t: t, base: base, token: apiToken}
	if msg := c.jsonError("POST", "/api/v1/reload", 422); !strings.Contains(msg, "api.token: is required while the API listens on 0.0.0.0:") {
		t.Errorf("API reload: %q", msg)
	}

	// Keeping a token is accepted (the listen change waits for a restart).
	writeFile(t, cfg, quietConfig(t, savePath, `{"listen": "127.0.0.1:0", "token": "a-new-t0ken-for-the-api"}`))
	mark = d.mark()
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.await(mark, 10*time.Second, msgIs("config reloaded"))
	if a, b := status(t, http.DefaultClient, base+"/api/v1/cameras", apiToken), status(t, http.DefaultClient, base+"/api/v1/cameras", "a-new-t0ken-for-the-api"); a != 401 || b != 200 {
		t.Errorf("old token %d, new token %d; want 401, 200", a, b)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, d.output())
	}
	assertNoSecret(t, d.output()+c.bodies.String(), apiToken, "a-new-t0ken-for-the-api", "s3cret-value")
	// The short camera password is masked where it stands as one.
	if strings.Contains(d.output(), "admin:12345@") {
		t.Error("the camera URL's short password is in the log")
	}
}

// TestTLSCertificateReloads: the daemon serves the certificate files it is
// given, and a SIGHUP reads them again (a renewed certificate, same paths).
func TestTLSCertificateReloads(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	writeCertPair(t, certPath, keyPath, "first")
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, cfg, quietConfig(t, t.TempDir(), fmt.Sprintf(`{"listen": "127.0.0.1:0", "token": %q, "tlsCert": %q, "tlsKey": %q, "metricsAuth": true}`,
		apiToken, certPath, keyPath)))
	d := startDaemon(t, "run", "--config", cfg)
	line, _ := d.await(0, 30*time.Second, msgIs("API listening"))
	base := "https://" + line["address"].(string)
	if line["tls"] != true {
		t.Errorf("API listening: %v", line)
	}
	served := func() string {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q", got)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if a, b := status(t, client, base+"/metrics", ""), status(t, client, base+"/metrics", apiToken); a != 401 || b != 200 {
		t.Errorf("/metrics with metricsAuth: %d without the token, %d with it", a, b)
	}
	writeCertPair(t, certPath, keyPath, "renewed")
	mark := d.mark()
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.await(mark, 10*time.Second, msgIs("config reloaded"))
	if got := served(); got != "renewed" {
		t.Errorf("after SIGHUP: served %q, want renewed", got)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, d.output())
	}
}

// TestConfigFileWarnings: the config is warned about when other users can
// read it, or when cctvd's own user can rewrite it.
func TestConfigFileWarnings(t *testing.T) {
	defer func(f func() int) { uid = f }(uid)
	tests := []struct {
		name  string
		mode  os.FileMode
		uid   int // owner, -1: as created
		gid   int // group, -1: as created (ours)
		asUID int
		want  string
	}{
		{"root:ours 0640 (make install)", 0o640, -1, -1, 4242, ""},
		{"0600", 0o600, -1, -1, 4242, ""},
		{"others can read", 0o644, -1, -1, 4242, "chmod 600 "},
		{"group can write", 0o660, -1, -1, 4242, "chmod 600 "},
		{"another group can read", 0o640, -1, 4243, 4242, "chmod 600 "},
		{"owned by the service user", 0o600, 4242, -1, 4242, "can rewrite its config"},
		{"owned by the service user, read-only", 0o400, 4242, -1, 4242, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			os.WriteFile(path, []byte("{}"), tt.mode)
			os.Chmod(path, tt.mode)
			if tt.uid >= 0 || tt.gid >= 0 {
				if err := os.Chown(path, tt.uid, tt.gid); err != nil {
					testenv.NeedsRoot(t, "chown: %v", err)
				}
			}
			uid = func() int { return tt.asUID }
			var buf bytes.Buffer
			warnIfReadable(zerolog.New(&buf), path)
			if tt.want == "" && buf.Len() > 0 || tt.want != "" && !strings.Contains(buf.String(), tt.want) {
				t.Errorf("warnings: %q, want %q", buf.String(), tt.want)
			}
		})
	}
}

func writeCertPair(t *testing.T, certPath, keyPath, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	writeFile(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
}

const apiToken = "t0ken-s3cret-abc"
