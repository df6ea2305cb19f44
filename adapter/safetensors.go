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
)

// MaxHeaderBytes bounds the JSON header of a safetensors file (the
// safetensors library uses the same 100 MiB limit).
const MaxHeaderBytes = 100 << 20

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

// parseEntry checks one tensor entry against the data section's length.
func parseEntry(name string, raw json.RawMessage, sectionLen int64) (storedTensor, error) {
	t := storedTensor{Name: name}
	if name == "" {
		return t, errors.New("empty tensor name")
	}
	var e struct {
		Dtype       *string  `json:"dtype"`
		Shape       *[]int64 `json:"shape"`
		DataOffsets *[]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return t, fmt.Errorf("bad entry: %v", err)
	}
	if e.Dtype == nil || e.Shape == nil || e.DataOffsets == nil {
		return t, errors.New("entry needs dtype, shape and data_offsets")
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

// encodeSafetensors writes F32 tensors in the given order with metadata.
// The header is padded with spaces to a multiple of 8 bytes, as the
// safetensors library does, so the data section stays aligned.
func encodeSafetensors(ts []namedTensor, meta map[string]string) ([]byte, error) {
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
	out := make([]byte, 0, 8+len(hjson)+pad+int(offset))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(hjson)+pad))
	out = append(out, hjson...)
	out = append(out, strings.Repeat(" ", pad)...)
	for _, t := range ts {
		for _, v := range t.Tensor.Data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out, nil
}

func nonNilShape(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
