package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Load reads, decodes and validates a federation.toml. The error, if any,
// is a *Problems (wrapping ErrInvalid) listing everything wrong with the
// file, or an I/O error naming the file.
func Load(path string) (Config, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return Default(), fmt.Errorf("read config: %w", err)
	}
	return Decode(data, path)
}

// MaxFileBytes bounds a federation.toml: the example is under 1 KiB, so
// anything near this size is the wrong file.
const MaxFileBytes = 1 << 20

// readConfigFile reads a regular file of at most MaxFileBytes. A device
// such as /dev/zero would never end and a FIFO would block, so neither is
// opened.
func readConfigFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case st.IsDir():
		return nil, fmt.Errorf("%s: is a directory", path)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file", path)
	case st.Size() > MaxFileBytes:
		return nil, fmt.Errorf("%s: %d bytes, larger than the %d-byte limit for a config file", path, st.Size(), MaxFileBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The file may grow between Stat and Read.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: larger than the %d-byte limit for a config file", path, MaxFileBytes)
	}
	return data, nil
}

// Decode decodes a federation.toml document over Default(), so keys the file
// omits keep their defaults, then validates the result. Decoding is strict:
// an unknown key, a value of the wrong type or an array of the wrong length
// is a problem with its line and key. Decoding does not stop at the first
// problem: unknown keys, type errors and out-of-range values of one file
// all come back together in one *Problems. name labels the document in
// errors (usually its path).
//
// go-toml's own strict mode stops at the first type error and quietly
// truncates or pads fixed-size arrays, so the document is first read as a
// generic tree and then matched against Config field by field.
func Decode(data []byte, name string) (Config, error) {
	cfg := Default()
	probs := &Problems{File: name}

	// A UTF-8 byte order mark (Windows editors write one) is not content.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data, unreadable, ok := screenDocument(data, probs)
	if !ok {
		return cfg, probs
	}
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		line, key := 0, ""
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ = de.Position()
			key = qualifiedKeyAt(data, line, strings.Join(de.Key(), "."))
		}
		probs.addAt(line, key, "%s", strings.TrimPrefix(err.Error(), "toml: "))
		return cfg, probs
	}

	lines := keyLines(data)
	d := treeDecoder{lines: lines, probs: probs, skip: unreadable}
	d.table(reflect.ValueOf(&cfg).Elem(), tree, "")
	cfg.validate(probs)
	for i := range probs.List {
		if probs.List[i].Line == 0 {
			probs.List[i].Line = lines.lookup(probs.List[i].Key)
		}
	}
	// In file order, so the list reads top to bottom next to the file.
	sort.SliceStable(probs.List, func(i, j int) bool { return probs.List[i].Line < probs.List[j].Line })
	return cfg, probs.orNil()
}

// qualifiedKeyAt returns the full dotted name of the key defined on line
// whose name ends in key: go-toml names a key defined twice without its
// table ("fan_out" for federation.gossip.fan_out). It returns key as it is
// when the document does not parse or no such key starts on the line.
func qualifiedKeyAt(data []byte, line int, key string) string {
	if line == 0 || key == "" {
		return key
	}
	lines := newLineTable(data)
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
		case unstable.KeyValue:
			first := e.Key()
			if !first.Next() || lines.line(first.Node().Raw.Offset) != line {
				continue
			}
			full := strings.Join(append(append([]string(nil), table...), keyParts(e.Key())...), ".")
			if full == key || strings.HasSuffix(full, "."+key) {
				return full
			}
		}
	}
	return key
}

// treeDecoder assigns a generic TOML tree to a struct whose fields carry
// toml tags, recording every mismatch instead of stopping at the first.
type treeDecoder struct {
	lines lineIndex
	probs *Problems
	// skip holds keys whose value screenDocument already reported; they
	// keep their defaults so the value is not reported a second time.
	skip map[string]bool
}

func (d treeDecoder) table(dst reflect.Value, tree map[string]any, prefix string) {
	fields := map[string]reflect.Value{}
	for i := 0; i < dst.NumField(); i++ {
		tag := strings.Split(dst.Type().Field(i).Tag.Get("toml"), ",")[0]
		if tag != "" && tag != "-" {
			fields[tag] = dst.Field(i)
		}
	}
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := prefix + k
		field, ok := fields[k]
		if !ok {
			d.probs.addAt(d.lines.lookup(key), key, "unknown key")
			continue
		}
		if d.skip[key] {
			continue
		}
		d.value(field, tree[k], key)
	}
}

func (d treeDecoder) value(dst reflect.Value, v any, key string) {
	bad := func(want string) {
		d.probs.addAt(d.lines.lookup(key), key, "want %s, got %s", want, describe(v))
	}
	switch dst.Kind() {
	case reflect.Struct:
		sub, ok := v.(map[string]any)
		if !ok {
			bad("a table")
			return
		}
		d.table(dst, sub, key+".")
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			bad("true or false")
			return
		}
		dst.SetBool(b)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			bad("a string")
			return
		}
		dst.SetString(s)
	case reflect.Int, reflect.Int64:
		n, ok := v.(int64)
		if !ok || dst.OverflowInt(n) {
			bad("an integer")
			return
		}
		dst.SetInt(n)
	case reflect.Float64:
		switch n := v.(type) {
		case float64:
			dst.SetFloat(n)
		case int64:
			dst.SetFloat(float64(n))
		default:
			bad("a number")
		}
	case reflect.Array:
		want := fmt.Sprintf("an array of %d integers [start, end]", dst.Len())
		arr, ok := v.([]any)
		if !ok || len(arr) != dst.Len() {
			bad(want)
			return
		}
		for i, e := range arr {
			n, ok := e.(int64)
			if !ok || dst.Index(i).OverflowInt(n) {
				d.probs.addAt(d.lines.lookup(key), key, "want %s, element %d is %s", want, i, describe(e))
				return
			}
			dst.Index(i).SetInt(n)
		}
	default:
		// Only reachable if Config gains a field of a new kind; the tests
		// decode every field, so this shows up there first.
		d.probs.addAt(d.lines.lookup(key), key, "field of kind %s cannot be set from a config file", dst.Kind())
	}
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x != math.Trunc(x) {
			return fmt.Sprintf("float %v", x)
		}
		return fmt.Sprintf("float %.1f", x)
	case []any:
		return fmt.Sprintf("an array of %d values", len(x))
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// lineIndex maps dotted keys ("federation.daf.coarse_range") to the line
// where they are defined.
type lineIndex map[string]int

// lookup returns the line of key, or of its nearest defined parent (a key
// inside an inline table, or a value problem about a table), or 0.
func (l lineIndex) lookup(key string) int {
	for key != "" {
		if line, ok := l[key]; ok {
			return line
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// keyLines walks the document's syntax tree to find where each key is
// defined. It only runs on documents that already parsed.
func keyLines(data []byte) lineIndex {
	idx := lineIndex{}
	lines := newLineTable(data)
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
			idx.record(lines, table, e.Key())
		case unstable.KeyValue:
			idx.keyValue(lines, table, e)
		}
	}
	return idx
}

func (l lineIndex) keyValue(lines lineTable, table []string, kv *unstable.Node) {
	full := append(append([]string(nil), table...), keyParts(kv.Key())...)
	l.record(lines, full, kv.Key())
	if v := kv.Value(); v != nil && v.Kind == unstable.InlineTable {
		it := v.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				l.keyValue(lines, full, c)
			}
		}
	}
}

func (l lineIndex) record(lines lineTable, parts []string, key unstable.Iterator) {
	if !key.Next() {
		return
	}
	line := lines.line(key.Node().Raw.Offset)
	for i := range parts {
		k := strings.Join(parts[:i+1], ".")
		if _, ok := l[k]; !ok {
			l[k] = line
		}
	}
}

// lineTable holds the offset of every '\n' of a document, so the line of
// an offset is a binary search. The parser's Shape scans from the start of
// the document on every call, which made a file of many keys quadratic.
type lineTable []int

func newLineTable(data []byte) lineTable {
	var t lineTable
	for i, c := range data {
		if c == '\n' {
			t = append(t, i)
		}
	}
	return t
}

// line is the 1-based line holding byte offset off.
func (t lineTable) line(off uint32) int {
	return sort.SearchInts(t, int(off)) + 1
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// Summary is a one-line description of a valid config for `daf config check`.
func (c Config) Summary() string {
	f := c.Federation
	return fmt.Sprintf("groups coarse [%d,%d) %s, domain [%d,%d) %s, fine [%d,%d) %s; tier %s; round every %ds, %d..%d nodes; ε=%g δ=%g per round",
		f.DAF.CoarseRange[0], f.DAF.CoarseRange[1], f.DAF.CoarseStrategy,
		f.DAF.DomainRange[0], f.DAF.DomainRange[1], f.DAF.DomainStrategy,
		f.DAF.FineRange[0], f.DAF.FineRange[1], f.DAF.FineStrategy,
		f.Node.Tier, f.RoundIntervalSecs, f.MinNodesForAggregation, f.MaxNodesPerRound,
		f.Privacy.Epsilon, f.Privacy.Delta)
}
