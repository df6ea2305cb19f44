package adapter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxHeaderBytes bounds the JSON header of a safetensors file (the
// safetensors library uses the same 100 MiB limit).
const MaxHeaderBytes = 100 << 20

// MaxTensors bounds the entries of one file. Each entry costs far more
// memory decoded than its ~50 bytes of JSON, so without a bound a header
// of tiny tensors makes the reader use many times the file's size. The
// largest PEFT adapters (every expert of a mixture-of-experts model) hold
// about 10⁵ tensors.
const MaxTensors = 1 << 18

// MaxDims bounds a tensor's rank (numpy's limit), so that a shape of
// millions of dimensions is refused before it is decoded.
const MaxDims = 64

// metadataKey is the reserved header entry holding string metadata.
const metadataKey = "__metadata__"

// storedTensor is one header entry, checked against the file.
type storedTensor struct {
	Name       string
	Dtype      string
	Shape      []int
	Begin, End int64 // byte offsets into the data section
}

// safetensorsFile is a parsed file: metadata, tensor entries sorted by
// offset, and the data section they point into (a sub-slice of the input;
// nothing is copied).
type safetensorsFile struct {
	Metadata map[string]string
	Tensors  []storedTensor
	Data     []byte
}

// corrupt builds an ErrCorrupt error naming the file and the part at fault
// ("header", "tensor X" or "metadata key").
func corrupt(file, part, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %s: %w", file, part, fmt.Sprintf(format, args...), ErrCorrupt)
}

func tensorPart(name string) string { return fmt.Sprintf("tensor %q", name) }

// parseSafetensors checks a safetensors file without trusting its header:
// the header length against the file and MaxHeaderBytes, the JSON (no
// duplicate names, no trailing bytes), every entry's dtype, shape and
// offsets, and that the tensors tile the data section with no overlap, hole
// or trailing byte. It allocates nothing in proportion to what the header
// claims, only to what the file holds.
func parseSafetensors(data []byte, file string) (*safetensorsFile, error) {
	if len(data) < 8 {
		return nil, corrupt(file, "header", "file is %d bytes, too short for the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderBytes {
		return nil, corrupt(file, "header", "header length %d exceeds the 100 MiB limit", n)
	}
	if n > uint64(len(data)-8) {
		return nil, corrupt(file, "header", "header length %d runs past the end of the %d-byte file", n, len(data))
	}
	header := data[8 : 8+n]
	section := data[8+n:]
	// Go's JSON decoder would replace a bad byte with U+FFFD and so
	// silently rename a tensor; the safetensors library refuses it too.
	if !utf8.Valid(header) {
		return nil, corrupt(file, "header", "not valid UTF-8")
	}

	entries, err := splitHeader(header)
	if err != nil {
		return nil, corrupt(file, "header", "%v", err)
	}
	f := &safetensorsFile{Metadata: map[string]string{}, Data: section}
	for _, e := range entries {
		if e.name == metadataKey {
			if err := json.Unmarshal(e.raw, &f.Metadata); err != nil {
				return nil, corrupt(file, "header", "__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		t, err := parseEntry(e.name, e.raw, int64(len(section)))
		if err != nil {
			return nil, corrupt(file, tensorPart(e.name), "%v", err)
		}
		f.Tensors = append(f.Tensors, t)
	}
	if err := checkTiling(f.Tensors, int64(len(section)), file); err != nil {
		return nil, err
	}
	return f, nil
}

type headerEntry struct {
	name string
	raw  json.RawMessage
}

// splitHeader reads the top-level JSON object entry by entry, because
// decoding into a map would silently keep only the last of two entries
// with the same name.
func splitHeader(header []byte) ([]headerEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("header is not a JSON object")
	}
	seen := map[string]bool{}
	var entries []headerEntry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("invalid JSON: object key is not a string")
		}
		if seen[name] {
			return nil, fmt.Errorf("tensor %q appears twice", name)
		}
		if name != metadataKey && len(seen)-btoi(seen[metadataKey]) >= MaxTensors {
			return nil, fmt.Errorf("more than %d tensors", MaxTensors)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("invalid JSON in entry %q: %v", name, err)
		}
		entries = append(entries, headerEntry{name, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("bytes after the header's JSON object")
	}
	return entries, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// isJSONObject reports whether a valid JSON value is an object.
func isJSONObject(v []byte) bool {
	v = bytes.TrimLeft(v, " \t\r\n")
	return len(v) > 0 && v[0] == '{'
}

// snippet quotes at most 40 bytes of a JSON value for an error message,
// on one line: whitespace between JSON tokens may include newlines.
func snippet(v []byte) string {
	cut := ""
	if len(v) > 40 {
		v, cut = v[:40], "…"
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, string(v)) + cut
}

// parseEntry checks one tensor entry against the data section's length.
// Each field is decoded on its own so that an error says which field is
// wrong in the file's terms, not in Go's.
func parseEntry(name string, raw json.RawMessage, sectionLen int64) (storedTensor, error) {
	t := storedTensor{Name: name}
	if name == "" {
		return t, errors.New("empty tensor name")
	}
	if !isJSONObject(raw) {
		return t, fmt.Errorf("entry is not a JSON object: %s", snippet(raw))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return t, fmt.Errorf("bad entry: %v", err)
	}
	present := func(k string) bool { v, ok := fields[k]; return ok && string(v) != "null" }
	if !present("dtype") || !present("shape") || !present("data_offsets") {
		return t, errors.New("entry needs dtype, shape and data_offsets")
	}
	var e struct {
		Dtype       *string
		Shape       *[]int64
		DataOffsets *[]int64
	}
	if err := json.Unmarshal(fields["dtype"], &e.Dtype); err != nil {
		return t, fmt.Errorf("dtype %s is not a string", snippet(fields["dtype"]))
	}
	// A shape of n dimensions has n-1 commas; counting them first keeps a
	// shape of millions of dimensions from being decoded at all.
	if bytes.Count(fields["shape"], []byte(",")) >= MaxDims {
		return t, fmt.Errorf("shape has more than %d dimensions", MaxDims)
	}
	if err := json.Unmarshal(fields["shape"], &e.Shape); err != nil {
		return t, fmt.Errorf("shape %s is not an array of integers below 2^63", snippet(fields["shape"]))
	}
	if err := json.Unmarshal(fields["data_offsets"], &e.DataOffsets); err != nil {
		return t, fmt.Errorf("data_offsets %s is not an array of integers below 2^63", snippet(fields["data_offsets"]))
	}
	t.Dtype = *e.Dtype
	size, ok := dtypeSize[t.Dtype]
	if !ok {
		if otherDtypes[t.Dtype] {
			return t, fmt.Errorf("dtype %s is not supported (want F32, F16 or BF16)", t.Dtype)
		}
		return t, fmt.Errorf("unknown dtype %q", t.Dtype)
	}
	// The element count is bounded by what the data section can hold, so
	// a hostile shape can neither overflow nor cause a large allocation.
	t.Shape = make([]int, len(*e.Shape))
	empty := false
	for i, d := range *e.Shape {
		if d < 0 {
			return t, fmt.Errorf("negative dimension %d in shape %v", d, *e.Shape)
		}
		if d > math.MaxInt32 {
			return t, fmt.Errorf("dimension %d in shape %v is too large", d, *e.Shape)
		}
		t.Shape[i] = int(d)
		empty = empty || d == 0
	}
	limit := sectionLen / size
	count := int64(1)
	if empty {
		count = 0
	} else {
		for _, d := range *e.Shape {
			if d > limit/count {
				return t, fmt.Errorf("shape %v needs more than the %d bytes of tensor data in the file", *e.Shape, sectionLen)
			}
			count *= d
		}
	}
	offs := *e.DataOffsets
	if len(offs) != 2 {
		return t, fmt.Errorf("data_offsets has %d values, want [begin, end]", len(offs))
	}
	t.Begin, t.End = offs[0], offs[1]
	if t.Begin < 0 || t.End < t.Begin || t.End > sectionLen {
		return t, fmt.Errorf("data_offsets [%d, %d] outside the %d-byte data section", t.Begin, t.End, sectionLen)
	}
	if want := count * size; t.End-t.Begin != want {
		return t, fmt.Errorf("shape %v of %s needs %d bytes, data_offsets [%d, %d] hold %d", t.Shape, t.Dtype, want, t.Begin, t.End, t.End-t.Begin)
	}
	return t, nil
}

// checkTiling sorts tensors by offset and requires them to cover the data
// section exactly: no two share bytes, no byte is unaccounted for.
func checkTiling(ts []storedTensor, sectionLen int64, file string) error {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Begin != ts[j].Begin {
			return ts[i].Begin < ts[j].Begin
		}
		return ts[i].End < ts[j].End
	})
	var pos int64
	prev := ""
	for _, t := range ts {
		switch {
		case t.Begin < pos:
			return corrupt(file, tensorPart(t.Name), "bytes [%d, %d) overlap tensor %q", t.Begin, t.End, prev)
		case t.Begin > pos:
			return corrupt(file, tensorPart(t.Name), "hole of %d bytes before it at offset %d", t.Begin-pos, pos)
		}
		pos, prev = t.End, t.Name
	}
	if pos != sectionLen {
		part := "header"
		if prev != "" {
			part = tensorPart(prev)
		}
		return corrupt(file, part, "%d bytes after the last tensor", sectionLen-pos)
	}
	return nil
}

// namedTensor pairs an on-disk name with its values for writing.
type namedTensor struct {
	Name   string
	Tensor *Tensor
}

// encodedFile is a safetensors file ready to be written: its header (the
// 8-byte length and the padded JSON) and the tensors whose values follow
// it, in order, as little-endian F32.
type encodedFile struct {
	header  []byte
	tensors []namedTensor
	size    int64 // of the whole file
}

// bytes is the whole file in one buffer.
func (e *encodedFile) bytes() []byte {
	out := make([]byte, 0, e.size)
	out = append(out, e.header...)
	for _, t := range e.tensors {
		out = appendF32(out, t.Tensor.Data)
	}
	return out
}

// encodeFile lays out F32 tensors in the given order with metadata: it
// checks them and builds the header. The
// header is padded with spaces to a multiple of 8 bytes, as the
// safetensors library does, so the data section stays aligned (and a
// reader can use F32 values where they lie).
//
// It refuses what parseSafetensors refuses, so a written file always reads
// back: more than MaxTensors tensors, more than MaxDims dimensions, and
// names or metadata that are not valid UTF-8 (encoding/json would replace
// the bad bytes and so rename them).
func encodeFile(ts []namedTensor, meta map[string]string) (*encodedFile, error) {
	if len(ts) > MaxTensors {
		return nil, fmt.Errorf("%d tensors, more than the %d a file may hold", len(ts), MaxTensors)
	}
	for k, v := range meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("metadata %q = %q is not valid UTF-8", k, v)
		}
	}
	for _, t := range ts {
		if !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		}
		if len(t.Tensor.Shape) > MaxDims {
			return nil, fmt.Errorf("tensor %q has %d dimensions, more than %d", t.Name, len(t.Tensor.Shape), MaxDims)
		}
	}
	header := make(map[string]any, len(ts)+1)
	if len(meta) > 0 {
		header[metadataKey] = meta
	}
	var offset int64
	for _, t := range ts {
		if _, dup := header[t.Name]; dup || t.Name == metadataKey {
			return nil, fmt.Errorf("tensor name %q used twice", t.Name)
		}
		n := int64(len(t.Tensor.Data)) * 4
		header[t.Name] = struct {
			Dtype       string   `json:"dtype"`
			Shape       []int    `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		}{DtypeF32, nonNilShape(t.Tensor.Shape), [2]int64{offset, offset + n}}
		offset += n
	}
	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(header); err != nil {
		return nil, err
	}
	hjson := bytes.TrimRight(hb.Bytes(), "\n")
	pad := (8 - (len(hjson) % 8)) % 8
	h := make([]byte, 0, 8+len(hjson)+pad)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(hjson)+pad))
	h = append(h, hjson...)
	h = append(h, strings.Repeat(" ", pad)...)
	return &encodedFile{header: h, tensors: ts, size: int64(len(h)) + offset}, nil
}

// writeTo streams the file to w. On a little-endian machine each tensor's
// values are written from where they lie, without an encoded copy.
func (e *encodedFile) writeTo(w io.Writer) error {
	if _, err := w.Write(e.header); err != nil {
		return err
	}
	var buf []byte
	for _, t := range e.tensors {
		if littleEndian {
			if _, err := w.Write(float32Bytes(t.Tensor.Data)); err != nil {
				return err
			}
			continue
		}
		for xs := t.Tensor.Data; len(xs) > 0; {
			n := min(len(xs), 16<<10)
			buf = appendF32(buf[:0], xs[:n])
			if _, err := w.Write(buf); err != nil {
				return err
			}
			xs = xs[n:]
		}
	}
	return nil
}

// appendF32 appends values as little-endian F32.
func appendF32(out []byte, xs []float32) []byte {
	if littleEndian {
		return append(out, float32Bytes(xs)...)
	}
	for _, v := range xs {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

func nonNilShape(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
