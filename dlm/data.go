package dlm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"
)

// Shard is one node's text: what it trains on and what it is judged on.
type Shard struct {
	Name    string
	Train   []byte
	Heldout []byte
}

// Size limits of a shard. A shard is read up to maxShardBytes (enough for
// hundreds of node-rounds of local training); its last eighth, but at least
// minHeldout bytes, is held out.
const (
	maxShardBytes = 256 << 10
	minHeldout    = 1 << 10
	minTrain      = 4 << 10
	minShardBytes = minTrain + minHeldout
)

// corpusDomain is one domain of the default corpus: a prose file or the
// Go source of one standard-library package, under GOROOT.
type corpusDomain struct {
	name string
	path string // relative to GOROOT/src
}

// defaultDomains are ordered so that the first few nodes get the most
// different text: English prose first, then Go packages of unrelated areas.
var defaultDomains = []corpusDomain{
	{"opticks", "testdata/Isaac.Newton-Opticks.txt"},
	{"net/http", "net/http"},
	{"crypto/tls", "crypto/tls"},
	{"go/types", "go/types"},
	{"runtime", "runtime"},
	{"encoding/json", "encoding/json"},
	{"math/big", "math/big"},
	{"database/sql", "database/sql"},
	{"compress/flate", "compress/flate"},
	{"image/png", "image/png"},
}

// goRoot finds the Go installation: $GOROOT, then `go env GOROOT`, then the
// root this binary was built with.
func goRoot() (string, error) {
	var tried []string
	try := func(root string) bool {
		if root == "" {
			return false
		}
		tried = append(tried, root)
		_, err := os.Stat(filepath.Join(root, "src", "testdata", "Isaac.Newton-Opticks.txt"))
		return err == nil
	}
	if r := os.Getenv("GOROOT"); try(r) {
		return r, nil
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if r := strings.TrimSpace(string(out)); try(r) {
			return r, nil
		}
	}
	//lint:ignore SA1019 the build-time root is the last fallback
	if r := runtime.GOROOT(); try(r) {
		return r, nil
	}
	if len(tried) == 0 {
		return "", fmt.Errorf("%w: no Go installation found ($GOROOT unset, `go` not on PATH); pass --data with your own text files or directories", ErrData)
	}
	return "", fmt.Errorf("%w: no Go installation with src/testdata/Isaac.Newton-Opticks.txt under %s; pass --data with your own text files or directories", ErrData, strings.Join(tried, ", "))
}

// DefaultCorpus builds one shard per node from texts every Go installation
// ships: node i gets domain i (prose, then distinct standard-library
// packages), so the shards are non-IID. With more nodes than domains, nodes
// sharing a domain get disjoint parts of it.
func DefaultCorpus(nodes int) ([]Shard, error) {
	if nodes < 1 {
		return nil, fmt.Errorf("%w: %d nodes; need at least 1", ErrData, nodes)
	}
	root, err := goRoot()
	if err != nil {
		return nil, err
	}
	nd := min(nodes, len(defaultDomains))
	texts := make([][]byte, nd)
	for i := range texts {
		p := filepath.Join(root, "src", defaultDomains[i].path)
		text, err := readText(p, maxShardBytes*((nodes+nd-1)/nd))
		if err != nil {
			return nil, err
		}
		texts[i] = text
	}
	shards := make([]Shard, nodes)
	for i := range shards {
		d := i % nd
		parts := (nodes - d + nd - 1) / nd // nodes sharing domain d
		part := i / nd
		text := texts[d]
		lo, hi := part*len(text)/parts, (part+1)*len(text)/parts
		name := defaultDomains[d].name
		if parts > 1 {
			name = fmt.Sprintf("%s#%d", name, part+1)
		}
		s, err := split(name, text[lo:hi], filepath.Join(root, "src", defaultDomains[d].path))
		if err != nil {
			return nil, err
		}
		shards[i] = s
	}
	return shards, nil
}

// pretrainDomains are what the shipped base learned from: Go source of
// standard-library packages that are none of the nodes' default domains.
// A federation's sites hold data its public base model never saw; if the
// base were pretrained on the nodes' own shards, their banks would have
// almost nothing left to learn and federating them could not show anything.
var pretrainDomains = []corpusDomain{
	{"fmt", "fmt"},
	{"strings", "strings"},
	{"text/template", "text/template"},
	{"go/parser", "go/parser"},
	{"bufio", "bufio"},
	{"net/url", "net/url"},
	{"archive/zip", "archive/zip"},
	{"flag", "flag"},
	{"html/template", "html/template"},
	{"strconv", "strconv"},
}

// PretrainShards is the corpus of the shipped base (see pretrainDomains),
// one shard per package; the held-out parts measure the pretrained base.
func PretrainShards() ([]Shard, error) {
	root, err := goRoot()
	if err != nil {
		return nil, err
	}
	shards := make([]Shard, 0, len(pretrainDomains))
	for _, d := range pretrainDomains {
		p := filepath.Join(root, "src", d.path)
		text, err := readText(p, maxShardBytes)
		if err != nil {
			return nil, err
		}
		s, err := split(d.name, text, p)
		if err != nil {
			return nil, err
		}
		shards = append(shards, s)
	}
	return shards, nil
}

// PretrainCorpus is the mix the shipped base was trained on: the training
// parts of PretrainShards, interleaved in 4 KiB blocks so that no package
// dominates a stretch of the corpus.
func PretrainCorpus() ([]byte, error) {
	shards, err := PretrainShards()
	if err != nil {
		return nil, err
	}
	return Interleave(shards), nil
}

// Interleave concatenates the shards' training text in 4 KiB blocks taken
// round-robin.
func Interleave(shards []Shard) []byte {
	const block = 4 << 10
	var out []byte
	for off := 0; ; off += block {
		more := false
		for _, s := range shards {
			if off < len(s.Train) {
				out = append(out, s.Train[off:min(off+block, len(s.Train))]...)
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

// LoadShards reads the user's data, one path (a text file or a directory of
// text files) per node.
func LoadShards(paths []string) ([]Shard, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no data paths given; pass one text file or directory per node", ErrData)
	}
	shards := make([]Shard, len(paths))
	for i, p := range paths {
		text, err := readText(p, maxShardBytes)
		if err != nil {
			return nil, err
		}
		s, err := split(filepath.Base(filepath.Clean(p)), text, p)
		if err != nil {
			return nil, err
		}
		shards[i] = s
	}
	return shards, nil
}

// GlobalHeldout mixes the shards' held-out text in equal shares (the length
// of the shortest), so every node's domain weighs the same in the global
// evaluation.
func GlobalHeldout(shards []Shard) []byte {
	if len(shards) == 0 {
		return nil
	}
	n := len(shards[0].Heldout)
	for _, s := range shards[1:] {
		n = min(n, len(s.Heldout))
	}
	out := make([]byte, 0, n*len(shards))
	for _, s := range shards {
		out = append(out, s.Heldout[:n]...)
	}
	return out
}

// split holds out the last eighth (at least minHeldout bytes) of text.
func split(name string, text []byte, path string) (Shard, error) {
	if len(text) < minShardBytes {
		return Shard{}, fmt.Errorf("%w: %s: %d bytes of text, need at least %d (%d to train on, %d held out); pass a larger file or a directory of text files", ErrData, path, len(text), minShardBytes, minTrain, minHeldout)
	}
	h := max(len(text)/8, minHeldout)
	cut := len(text) - h
	return Shard{Name: name, Train: text[:cut:cut], Heldout: text[cut:]}, nil
}

// readText reads a text file, or the text files of a directory tree in
// lexical order (Go sources without their tests; hidden entries and binary
// files skipped), up to limit bytes.
func readText(path string, limit int) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist; pass an existing text file or directory", ErrData, path)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	if !fi.IsDir() {
		text, err := readFileLimit(path, limit)
		if err != nil {
			return nil, err
		}
		if len(text) == 0 {
			return nil, fmt.Errorf("%w: %s is empty; pass a file with text in it", ErrData, path)
		}
		if !isText(text) {
			return nil, fmt.Errorf("%w: %s is not text (binary content); pass a UTF-8 text file", ErrData, path)
		}
		return text, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != path && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	slices.Sort(files)
	var out []byte
	for _, f := range files {
		if len(out) >= limit {
			break
		}
		text, err := readFileLimit(f, limit-len(out))
		if err != nil {
			return nil, err
		}
		if len(text) == 0 || !isText(text) {
			continue
		}
		out = append(out, text...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: directory %s holds no text files; pass a directory with UTF-8 text files in it", ErrData, path)
	}
	return out[:min(len(out), limit)], nil
}

func readFileLimit(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	return text, nil
}

// isText accepts UTF-8 without NUL bytes; a cut at the read limit may split
// the last rune, so the final 3 bytes are not judged.
func isText(b []byte) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	body := b
	if len(body) > 3 {
		body = body[:len(body)-3]
	}
	bad := 0
	for len(body) > 0 {
		r, size := utf8.DecodeRune(body)
		if r == utf8.RuneError && size == 1 {
			bad++
		}
		body = body[size:]
	}
	return bad*100 <= len(b)
}

// NumDefaultDomains is the number of distinct domains DefaultCorpus has;
// more nodes than this share domains.
var NumDefaultDomains = len(defaultDomains)

// LoadText reads one text file or directory of text files (as LoadShards
// does for each path) and checks that it is long enough to train on and
// hold out from: the input of NewTrainer for `daf node --train-data`.
func LoadText(path string) ([]byte, error) {
	text, err := readText(path, maxShardBytes)
	if err != nil {
		return nil, err
	}
	if _, err := split(path, text, path); err != nil {
		return nil, err
	}
	return text, nil
}
