package web

import (
	"regexp"
	"strings"
	"testing"
)

// TestEveryReferenceResolves: every file the page names (in index.html,
// and the modules' imports) is embedded, with its content type.
func TestEveryReferenceResolves(t *testing.T) {
	refs := regexp.MustCompile(`(?:src|href)="/ui/([^"]+)"|from '\./([^']+)'|import\('/ui/([^']+)'\)`)
	seen := 0
	for _, n := range Names() {
		a, ok := Lookup(n)
		if !ok || a.ContentType == "" || !strings.HasPrefix(a.ETag, `"`) || len(a.Body) == 0 {
			t.Errorf("%s: %+v, %v", n, a.ContentType, ok)
		}
		for _, m := range refs.FindAllStringSubmatch(string(a.Body), -1) {
			name := m[1] + m[2] + m[3]
			seen++
			if _, ok := Lookup(name); !ok {
				t.Errorf("%s names %s, which the page does not have", n, name)
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d references found: the pattern no longer matches the files", seen)
	}
	if _, ok := Lookup(IndexName); !ok {
		t.Error("no index.html")
	}
	for _, bad := range []string{"", "../web.go", "static/app.js", "web.go", "nope.js"} {
		if _, ok := Lookup(bad); ok {
			t.Errorf("Lookup(%q) found a file", bad)
		}
	}
}
