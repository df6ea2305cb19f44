package dlm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultCorpusIsNonIID(t *testing.T) {
	shards, err := DefaultCorpus(5)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range shards {
		if names[s.Name] {
			t.Errorf("domain %s given to two nodes", s.Name)
		}
		names[s.Name] = true
		if len(s.Train) < minTrain || len(s.Heldout) < minHeldout {
			t.Errorf("%s: %d train, %d held-out bytes", s.Name, len(s.Train), len(s.Heldout))
		}
		if bytes.Contains(s.Train, s.Heldout[:256]) {
			t.Errorf("%s: held-out text also in the training part", s.Name)
		}
	}
	if !bytes.Contains(shards[0].Train, []byte("Light")) || !bytes.Contains(shards[1].Train, []byte("package http")) {
		t.Errorf("first shards are not Opticks prose and net/http source")
	}
	g := GlobalHeldout(shards)
	if len(g) != 5*len(shards[0].Heldout[:min(len(shards[0].Heldout), len(g)/5)]) {
		t.Errorf("global held-out of %d bytes is not 5 equal shares", len(g))
	}
}

func TestDefaultCorpusSharesDomainsBeyondItsSize(t *testing.T) {
	n := NumDefaultDomains + 2
	shards, err := DefaultCorpus(n)
	if err != nil {
		t.Fatal(err)
	}
	if shards[0].Name != "opticks#1" || shards[NumDefaultDomains].Name != "opticks#2" {
		t.Fatalf("names %s, %s", shards[0].Name, shards[NumDefaultDomains].Name)
	}
	if bytes.Equal(shards[0].Train[:512], shards[NumDefaultDomains].Train[:512]) {
		t.Fatal("nodes sharing a domain got the same text")
	}
}

func TestDefaultCorpusWithoutGo(t *testing.T) {
	t.Setenv("GOROOT", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	_, err := DefaultCorpus(3)
	// runtime.GOROOT() may still find the build toolchain; without it the
	// error must say what to pass instead.
	if err != nil && (!errors.Is(err, ErrData) || !strings.Contains(err.Error(), "--data")) {
		t.Fatalf("error %v should name --data", err)
	}
}

func TestLoadShards(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.txt", randomText(10<<10, 1))
	write("tree/a.md", randomText(3<<10, 2))
	write("tree/b.txt", randomText(3<<10, 3))
	write("tree/logo.png", append([]byte("\x89PNG\x00\x00"), randomText(100, 1)...))
	write("tree/.git/objects", randomText(50<<10, 4))
	shards, err := LoadShards([]string{good, filepath.Join(dir, "tree")})
	if err != nil {
		t.Fatal(err)
	}
	if shards[0].Name != "good.txt" || shards[1].Name != "tree" {
		t.Errorf("names %q %q", shards[0].Name, shards[1].Name)
	}
	// The two text files, each ended by a newline if it lacked one.
	if n := len(shards[1].Train) + len(shards[1].Heldout); n < 6<<10 || n > 6<<10+2 {
		t.Errorf("directory shard has %d bytes, want the two text files (%d): binary or hidden files leaked in", n, 6<<10)
	}
	cases := map[string]struct {
		path string
		want string
	}{
		"missing": {filepath.Join(dir, "nope.txt"), "does not exist"},
		"empty":   {write("empty.txt", nil), "empty"},
		"binary":  {write("bin.dat", append(randomText(8<<10, 1), 0, 1, 2)), "not text"},
		"small":   {write("small.txt", randomText(3000, 1)), "need at least"},
		"no text": {filepath.Dir(write("bins/x.bin", []byte{0, 1, 2, 3})), "no text files"},
	}
	for name, tc := range cases {
		_, err := LoadShards([]string{good, tc.path})
		if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v should name %s and say %q", name, err, tc.path, tc.want)
		}
	}
	if text, err := LoadText(good); err != nil || len(text) != 10<<10 {
		t.Errorf("LoadText: %d bytes, %v", len(text), err)
	}
	if _, err := LoadText(filepath.Join(dir, "small.txt")); !errors.Is(err, ErrData) {
		t.Errorf("LoadText of a small file: %v", err)
	}
	if _, err := LoadShards(nil); !errors.Is(err, ErrData) {
		t.Errorf("no paths: %v", err)
	}
}
