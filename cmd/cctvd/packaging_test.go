//go:build integration

package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func makeTarget(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("make", append([]string{"-C", "../.."}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestMakeInstall lays the tree out in a temporary DESTDIR, checks it, has
// systemd-analyze verify the unit, and uninstalls.
func TestMakeInstall(t *testing.T) {
	dest := t.TempDir()
	makeTarget(t, "install", "DESTDIR="+dest, "PREFIX=/usr")
	want := map[string]os.FileMode{
		"usr/bin/cctvd":                         0o755,
		"lib/systemd/system/cctvd.service":      0o644,
		"usr/lib/sysusers.d/cctvd.conf":         0o644,
		"usr/lib/tmpfiles.d/cctvd.conf":         0o644,
		"etc/cctvd/config.json":                 0o640, // root:cctvd on a real install: readable, not writable, by the service
		"usr/share/doc/cctvd/README.md":         0o644,
		"usr/share/doc/cctvd/docs/upload.md":    0o644, // the manual beside it: README's links work
		"usr/share/doc/cctvd/docs/openapi.yaml": 0o644,
	}
	for rel, mode := range want {
		fi, err := os.Stat(filepath.Join(dest, rel))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", rel, err, fi.Mode().Perm(), mode)
		}
	}
	unit := readFile(t, filepath.Join(dest, "lib/systemd/system/cctvd.service"))
	for _, line := range []string{"ExecStart=/usr/bin/cctvd run --config /etc/cctvd/config.json", "Restart=always", "User=cctvd",
		"NoNewPrivileges=yes", "ProtectProc=invisible", "ProtectSystem=strict", "ReadWritePaths=/var/cctv/recordings", "KillSignal=SIGTERM", "KillMode=mixed",
		"RequiresMountsFor=/var/cctv/recordings", "StateDirectory=cctvd"} {
		if !strings.Contains(unit, line+"\n") {
			t.Errorf("unit lacks %q", line)
		}
	}
	// An API token from the start, readable by the service only.
	envFile := filepath.Join(dest, "etc/cctvd/environment")
	if fi, err := os.Stat(envFile); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("environment: %v, mode %v, want 0640", err, fi.Mode().Perm())
	}
	token := strings.TrimSpace(strings.TrimPrefix(readFile(t, envFile), "CCTVD_API_TOKEN="))
	if len(token) != 32 || strings.Trim(token, "0123456789abcdef") != "" {
		t.Errorf("environment holds %q, want CCTVD_API_TOKEN= and 32 random hex digits", readFile(t, envFile))
	}
	// The installed config is the example and loads.
	if readFile(t, filepath.Join(dest, "etc/cctvd/config.json")) != readFile(t, "../../config.example.json") {
		t.Error("the installed config is not config.example.json")
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		// Verify the unit with ExecStart pointing into the staged tree.
		check := filepath.Join(t.TempDir(), "cctvd.service")
		os.WriteFile(check, []byte(strings.ReplaceAll(unit, "/usr/bin/cctvd", filepath.Join(dest, "usr/bin/cctvd"))), 0o644)
		if out, err := exec.Command(analyze, "verify", check).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("systemd-analyze is not installed: the unit was not verified")
	}

	// A second install never overwrites the config, nor the token.
	os.WriteFile(filepath.Join(dest, "etc/cctvd/config.json"), []byte("edited"), 0o640)
	makeTarget(t, "install", "DESTDIR="+dest, "PREFIX=/usr")
	if readFile(t, filepath.Join(dest, "etc/cctvd/config.json")) != "edited" {
		t.Error("install overwrote the config")
	}
	if !strings.Contains(readFile(t, envFile), token) {
		t.Error("install replaced the API token")
	}
	// Uninstall removes what install put, but not an edited config, and
	// never recordings.
	rec := filepath.Join(dest, "var/cctv/recordings/cam1/x.mp4")
	os.MkdirAll(filepath.Dir(rec), 0o755)
	os.WriteFile(rec, []byte("footage"), 0o644)
	makeTarget(t, "uninstall", "DESTDIR="+dest, "PREFIX=/usr")
	for rel := range want {
		_, err := os.Stat(filepath.Join(dest, rel))
		if rel == "etc/cctvd/config.json" {
			if err != nil {
				t.Error("uninstall removed the edited config")
			}
		} else if err == nil {
			t.Errorf("uninstall left %s", rel)
		}
	}
	if _, err := os.Stat(rec); err != nil {
		t.Error("uninstall touched recordings")
	}
}

// TestMakeDist builds the release binaries and checks they are static, for
// the right machines, with the version stamped.
func TestMakeDist(t *testing.T) {
	dist := t.TempDir()
	makeTarget(t, "dist", "DIST="+dist, "VERSION=v9.9.9-test")
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		p := filepath.Join(dist, "cctvd-v9.9.9-test-linux-"+arch)
		f, err := elf.Open(p)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if f.Machine != machine {
			t.Errorf("%s: machine %v", arch, f.Machine)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked", p)
			}
		}
		f.Close()
		if out, err := exec.Command("file", p).Output(); err == nil && !strings.Contains(string(out), "statically linked") {
			t.Errorf("file says: %s", out)
		}
	}
	out, err := exec.Command(filepath.Join(dist, "cctvd-v9.9.9-test-linux-amd64"), "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "cctvd v9.9.9-test" {
		t.Errorf("version: %q %v", out, err)
	}
	if !strings.Contains(readFile(t, filepath.Join(dist, "SHA256SUMS")), "cctvd-v9.9.9-test-linux-arm64") {
		t.Error("SHA256SUMS lacks the arm64 binary")
	}
}
