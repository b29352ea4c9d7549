package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and the generated part of docs/configuration.md")

const (
	refBegin = "<!-- BEGIN GENERATED REFERENCE: go test ./config -run TestReferenceDoc -update -->\n"
	refEnd   = "<!-- END GENERATED REFERENCE -->"
)

// The documented key reference is generated from the Go types; this test
// fails when a key is added or described differently without the doc.
func TestReferenceDoc(t *testing.T) {
	const path = "../docs/configuration.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, refBegin), strings.Index(doc, refEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated reference markers", path)
	}
	want := doc[:i+len(refBegin)] + Reference() + doc[j:]
	if doc == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with the configuration types; run: go test ./config -run TestReferenceDoc -update", path)
}

func TestReferenceCoversEveryKey(t *testing.T) {
	ref := Reference()
	for _, key := range []string{"`listen.https`", "`routes[].path`", "`upstreams.NAME.url`", "`tls.source`", "`admin.token`", "`headers.security.hsts_max_age`", "`log.level`"} {
		if !strings.Contains(ref, key) {
			t.Errorf("Reference() lacks %s", key)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(ref), "\n")[2:] {
		if strings.HasSuffix(line, "|  |") {
			t.Errorf("undocumented key: %s", line)
		}
	}
}
