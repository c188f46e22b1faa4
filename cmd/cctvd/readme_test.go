package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDevelopmentNamesEveryPackage: the manual's development page names
// every Debian package scripts/deps.sh may install, so that an offline
// installer can pre-seed them.
func TestDevelopmentNamesEveryPackage(t *testing.T) {
	out, err := exec.Command("../../scripts/deps.sh", "--packages").Output()
	if err != nil {
		t.Fatalf("deps.sh --packages: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 5 {
		t.Fatalf("deps.sh --packages lists %v: too few", pkgs)
	}
	dev := readFile(t, "../../docs/development.md")
	for _, p := range pkgs {
		if !strings.Contains(dev, "`"+p+"`") {
			t.Errorf("docs/development.md does not name the Debian package `%s` that scripts/deps.sh may install", p)
		}
	}
}

// TestReadmeKeepsTheTwoCommandsNearTheTop: a newcomer finds the two
// commands that set a fresh Debian machine up before anything else.
func TestReadmeKeepsTheTwoCommandsNearTheTop(t *testing.T) {
	readme := readFile(t, "../../README.md")
	lines := strings.Split(readme, "\n")
	found := map[string]int{}
	for i, l := range lines {
		for _, c := range []string{"make demo", "make test"} {
			if _, ok := found[c]; !ok && strings.HasPrefix(l, c+" ") {
				found[c] = i + 1
			}
		}
	}
	for _, c := range []string{"make demo", "make test"} {
		if n, ok := found[c]; !ok || n > 40 {
			t.Errorf("README.md: %q on line %d, want it in the code block near the top (line ≤ 40)", c, n)
		}
	}
	if len(lines) > 200 {
		t.Errorf("README.md has %d lines: the manual goes under docs/", len(lines))
	}
}

// TestManualLinksResolve: every relative link in README.md and docs/*.md
// names a file that exists, and every #anchor a heading of that file.
func TestManualLinksResolve(t *testing.T) {
	pages, _ := filepath.Glob("../../docs/*.md")
	pages = append(pages, "../../README.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		text := readFile(t, page)
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: link %s: %v", filepath.Base(page), target, err)
				continue
			}
			if anchor != "" && !hasAnchor(t, path, anchor) {
				t.Errorf("%s: link %s: no heading %q in %s", filepath.Base(page), target, anchor, filepath.Base(path))
			}
		}
	}
}

// hasAnchor says whether a markdown file has a heading whose GitHub anchor
// is anchor.
func hasAnchor(t *testing.T, path, anchor string) bool {
	if !strings.HasSuffix(path, ".md") {
		return false
	}
	drop := regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	for _, l := range strings.Split(readFile(t, path), "\n") {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		if strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-") == anchor {
			return true
		}
	}
	return false
}
