package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReadmeNamesEveryPackage: README's development section names every
// Debian package scripts/deps.sh may install, so that an offline installer
// can pre-seed them.
func TestReadmeNamesEveryPackage(t *testing.T) {
	out, err := exec.Command("../../scripts/deps.sh", "--packages").Output()
	if err != nil {
		t.Fatalf("deps.sh --packages: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 5 {
		t.Fatalf("deps.sh --packages lists %v: too few", pkgs)
	}
	readme := readFile(t, "../../README.md")
	for _, p := range pkgs {
		if !strings.Contains(readme, "`"+p+"`") {
			t.Errorf("README.md does not name the Debian package `%s` that scripts/deps.sh may install", p)
		}
	}
}
