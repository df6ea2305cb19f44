package dlm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// The base model file is safetensors (F32 only): an 8-byte little-endian
// header length, a JSON header naming every tensor with its dtype, shape and
// byte range, then the raw data. The model shape lives in __metadata__ so a
// file describes itself; tensor names and order follow layout().
const (
	baseFormat     = "daf-dlm-base/1"
	maxBaseFile    = 256 << 20
	maxBaseHeader  = 1 << 20
	metaFormat     = "dlm.format"
	metaSeqLen     = "dlm.seq_len"
	metaDModel     = "dlm.d_model"
	metaHeads      = "dlm.heads"
	metaLayers     = "dlm.layers"
	metaFF         = "dlm.ff"
	metaRank       = "dlm.rank"
	metaAlpha      = "dlm.lora_alpha"
	metaTimeBucket = "dlm.time_buckets"
)

type tensorHeader struct {
	Dtype       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// LoadBase reads a base model written by Save (or `daf pretrain`).
func LoadBase(path string) (*Base, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("base model %s: %w", path, err)
	}
	if fi.Size() > maxBaseFile {
		return nil, fmt.Errorf("base model %s: %w: %d bytes, limit %d", path, ErrBaseFile, fi.Size(), maxBaseFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("base model %s: %w", path, err)
	}
	b, err := decodeBase(data)
	if err != nil {
		return nil, fmt.Errorf("base model %s: %w", path, err)
	}
	return b, nil
}

// Save writes the base atomically: a temporary file in the same directory,
// fsync, rename.
func (b *Base) Save(path string) error {
	data, err := b.encode()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".base-*.tmp")
	if err != nil {
		return fmt.Errorf("save base model %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save base model %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save base model %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save base model %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save base model %s: %w", path, err)
	}
	return nil
}

func (b *Base) encode() ([]byte, error) {
	c := b.Config
	header := map[string]any{}
	meta := map[string]string{
		metaFormat:     baseFormat,
		metaSeqLen:     strconv.Itoa(c.SeqLen),
		metaDModel:     strconv.Itoa(c.DModel),
		metaHeads:      strconv.Itoa(c.Heads),
		metaLayers:     strconv.Itoa(c.Layers),
		metaFF:         strconv.Itoa(c.FF),
		metaRank:       strconv.Itoa(c.Rank),
		metaAlpha:      strconv.FormatFloat(c.Alpha, 'g', -1, 64),
		metaTimeBucket: strconv.Itoa(TimeBuckets),
	}
	header["__metadata__"] = meta
	var off int64
	for _, t := range b.p.tensors {
		shape := make([]int64, len(t.shape))
		for i, d := range t.shape {
			shape[i] = int64(d)
		}
		n := int64(len(t.data)) * 4
		header[t.name] = tensorHeader{Dtype: "F32", Shape: shape, DataOffsets: []int64{off, off + n}}
		off += n
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("encode base model header: %w", err)
	}
	// Pad the header with spaces so the data starts 8-byte aligned, as the
	// safetensors writers do.
	for (8+len(hj))%8 != 0 {
		hj = append(hj, ' ')
	}
	out := make([]byte, 8, 8+len(hj)+int(off))
	binary.LittleEndian.PutUint64(out, uint64(len(hj)))
	out = append(out, hj...)
	for _, t := range b.p.tensors {
		for _, v := range t.data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out, nil
}

// decodeBase never trusts the header: sizes are checked against the file
// before anything is allocated, and the tensor set must be exactly the one
// the metadata's shape implies, contiguous, without overlaps or holes.
func decodeBase(data []byte) (*Base, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, too short for a safetensors header", ErrBaseFile, len(data))
	}
	hlen := binary.LittleEndian.Uint64(data)
	if hlen > maxBaseHeader || hlen > uint64(len(data)-8) {
		return nil, fmt.Errorf("%w: header length %d exceeds the file (%d bytes) or the limit %d", ErrBaseFile, hlen, len(data), maxBaseHeader)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+hlen], &raw); err != nil {
		return nil, fmt.Errorf("%w: header is not valid JSON: %v", ErrBaseFile, err)
	}
	body := data[8+hlen:]
	var meta map[string]string
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, fmt.Errorf("%w: __metadata__ is not a string map: %v", ErrBaseFile, err)
		}
	}
	if meta[metaFormat] != baseFormat {
		return nil, fmt.Errorf("%w: %s is %q, want %q", ErrBaseFile, metaFormat, meta[metaFormat], baseFormat)
	}
	c, err := configFromMeta(meta)
	if err != nil {
		return nil, err
	}
	if int64(numParams(c))*4 != int64(len(body)) {
		return nil, fmt.Errorf("%w: %d data bytes, the model shape in the metadata needs %d", ErrBaseFile, len(body), int64(numParams(c))*4)
	}
	ts := layout(c)
	if len(raw)-1 != len(ts) {
		return nil, fmt.Errorf("%w: %d tensors, want %d for this model shape", ErrBaseFile, len(raw)-1, len(ts))
	}
	p := newParams(c, nil)
	type span struct {
		name       string
		start, end int64
	}
	spans := make([]span, 0, len(ts))
	for i, t := range p.tensors {
		msg, ok := raw[t.name]
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s missing", ErrBaseFile, t.name)
		}
		var th tensorHeader
		if err := json.Unmarshal(msg, &th); err != nil {
			return nil, fmt.Errorf("%w: tensor %s: bad header entry: %v", ErrBaseFile, t.name, err)
		}
		if th.Dtype != "F32" {
			return nil, fmt.Errorf("%w: tensor %s has dtype %q, want F32", ErrBaseFile, t.name, th.Dtype)
		}
		if len(th.Shape) != len(t.shape) {
			return nil, fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrBaseFile, t.name, th.Shape, t.shape)
		}
		for j, d := range th.Shape {
			if d != int64(t.shape[j]) {
				return nil, fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrBaseFile, t.name, th.Shape, t.shape)
			}
		}
		if len(th.DataOffsets) != 2 || th.DataOffsets[0] < 0 || th.DataOffsets[1] < th.DataOffsets[0] || th.DataOffsets[1] > int64(len(body)) {
			return nil, fmt.Errorf("%w: tensor %s has data offsets %v outside the %d data bytes", ErrBaseFile, t.name, th.DataOffsets, len(body))
		}
		if th.DataOffsets[1]-th.DataOffsets[0] != int64(len(t.data))*4 {
			return nil, fmt.Errorf("%w: tensor %s spans %d bytes, its shape needs %d", ErrBaseFile, t.name, th.DataOffsets[1]-th.DataOffsets[0], len(t.data)*4)
		}
		spans = append(spans, span{t.name, th.DataOffsets[0], th.DataOffsets[1]})
		src := body[th.DataOffsets[0]:th.DataOffsets[1]]
		for j := range t.data {
			v := math.Float32frombits(binary.LittleEndian.Uint32(src[4*j:]))
			if !finite32(v) {
				return nil, fmt.Errorf("%w: tensor %s[%d] = %v", ErrBaseFile, t.name, j, v)
			}
			p.tensors[i].data[j] = v
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return int(a.start - b.start) })
	var at int64
	for _, s := range spans {
		if s.start != at {
			return nil, fmt.Errorf("%w: tensor %s starts at byte %d, want %d (overlap or hole)", ErrBaseFile, s.name, s.start, at)
		}
		at = s.end
	}
	if at != int64(len(body)) {
		return nil, fmt.Errorf("%w: %d trailing data bytes after the last tensor", ErrBaseFile, int64(len(body))-at)
	}
	p.refresh()
	return &Base{Config: c, p: p}, nil
}

func configFromMeta(meta map[string]string) (ModelConfig, error) {
	var c ModelConfig
	ints := []struct {
		key string
		dst *int
	}{{metaSeqLen, &c.SeqLen}, {metaDModel, &c.DModel}, {metaHeads, &c.Heads}, {metaLayers, &c.Layers}, {metaFF, &c.FF}, {metaRank, &c.Rank}}
	for _, f := range ints {
		v, err := strconv.Atoi(meta[f.key])
		if err != nil {
			return c, fmt.Errorf("%w: metadata %s = %q is not an integer", ErrBaseFile, f.key, meta[f.key])
		}
		*f.dst = v
	}
	a, err := strconv.ParseFloat(meta[metaAlpha], 64)
	if err != nil {
		return c, fmt.Errorf("%w: metadata %s = %q is not a number", ErrBaseFile, metaAlpha, meta[metaAlpha])
	}
	c.Alpha = a
	if tb := meta[metaTimeBucket]; tb != strconv.Itoa(TimeBuckets) {
		return c, fmt.Errorf("%w: metadata %s = %q, this build uses %d", ErrBaseFile, metaTimeBucket, tb, TimeBuckets)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%w: %v", ErrBaseFile, err)
	}
	if numParams(c) > maxBaseFile/4 {
		return c, fmt.Errorf("%w: model shape %+v needs %d weights, over the limit", ErrBaseFile, c, numParams(c))
	}
	return c, nil
}
