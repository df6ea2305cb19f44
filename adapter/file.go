package adapter

import (
	"errors"
	"fmt"
	"github.com/dafnet/daf/internal/atomicfile"
	"io"
	"math"
	"os"
	"strings"
)

// PlainGroup is the single group a plain safetensors file (one without
// daf.format, such as a PEFT adapter_model.safetensors) is read as.
const PlainGroup = "all"

// Marshal encodes an update as a safetensors file: F32 tensors named
// "<group>/<PEFT key>" in sorted order and every daf.* metadata key. It
// refuses what Unmarshal would refuse (bad names, shapes that do not match
// the data, non-finite values, invalid metadata), so a written file always
// reads back.
func Marshal(u *Update) ([]byte, error) {
	e, err := encodeUpdate(u)
	if err != nil {
		return nil, err
	}
	return e.bytes(), nil
}

// encodeUpdate checks an update as Marshal does and lays out its file.
func encodeUpdate(u *Update) (*encodedFile, error) {
	if u == nil {
		return nil, errors.New("marshal update: nil update")
	}
	if err := checkMetadata(u.Meta); err != nil {
		return nil, fmt.Errorf("marshal update: %w", err)
	}
	var ts []namedTensor
	for _, g := range u.GroupNames() {
		if g == "" || strings.Contains(g, "/") {
			return nil, fmt.Errorf("marshal update: group name %q must be non-empty and contain no '/'", g)
		}
		for _, k := range u.Keys(g) {
			name := g + "/" + k
			if err := checkTensor(u.Groups[g][k], k); err != nil {
				return nil, fmt.Errorf("marshal update: tensor %q: %w", name, err)
			}
			ts = append(ts, namedTensor{name, u.Groups[g][k]})
		}
	}
	if g, k, r, ok := rankConflict(u); !ok {
		return nil, fmt.Errorf("marshal update: %s %d, but tensor %q has rank %d", KeyRank, u.Meta.Rank, g+"/"+k, r)
	}
	return encodeFile(ts, encodeMetadata(u.Meta))
}

// checkTensor holds a tensor to what a reader accepts.
func checkTensor(t *Tensor, key string) error {
	if key == "" {
		return errors.New("empty tensor key")
	}
	if t == nil {
		return errors.New("nil tensor")
	}
	n := 1
	for _, d := range t.Shape {
		if d < 0 || d > math.MaxInt32 {
			return fmt.Errorf("bad dimension %d in shape %v", d, t.Shape)
		}
		n *= d
	}
	if n != len(t.Data) {
		return fmt.Errorf("shape %v holds %d values, data has %d", t.Shape, n, len(t.Data))
	}
	if allFinite(t.Data) {
		return nil
	}
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w at index %d: %v", ErrNonFinite, i, v)
		}
	}
	return nil
}

// Unmarshal decodes an update file. name is the file's path or label: it
// appears in every error and gives daf.node its default. A file with
// daf.format names its tensors "<group>/<PEFT key>"; a file without it is
// a plain safetensors adapter (PEFT) and is read as the single group "all"
// of kind adapter. F16 and BF16 tensors are widened exactly to float32.
//
// Errors wrap ErrCorrupt (bad structure or metadata) or ErrNonFinite (a NaN
// or infinite value) and name the file and the tensor or key at fault.
func Unmarshal(data []byte, name string) (*Update, error) {
	u, _, err := unmarshal(data, name, nil)
	return u, err
}

// unmarshal also returns the stored entries, for inspection. With a
// mapping, data is its read-only view of the file: F32 tensors alias it
// where they can (see ReadFileMapped), and every touch of it runs under
// the mapping's guard. Without one, every tensor is a copy, so the caller
// may reuse data.
func unmarshal(data []byte, name string, m *Mapping) (*Update, *safetensorsFile, error) {
	f, err := parseSafetensors(data, name)
	if err != nil {
		return nil, nil, err
	}
	meta, err := decodeMetadata(f.Metadata, name)
	if err != nil {
		return nil, nil, err
	}
	_, isDAF := f.Metadata[KeyFormat]
	if !isDAF {
		meta.Kind = KindAdapter
	}
	u := &Update{Meta: meta, Groups: map[string]map[string]*Tensor{}}
	values := make([][]float32, len(f.Tensors))
	for i, st := range f.Tensors {
		group, key := PlainGroup, st.Name
		if isDAF {
			var ok bool
			group, key, ok = strings.Cut(st.Name, "/")
			if !ok || group == "" || key == "" {
				return nil, nil, corrupt(name, tensorPart(st.Name), "name is not <group>/<PEFT key>")
			}
		}
		raw := f.Data[st.Begin:st.End]
		var xs []float32
		if m != nil {
			xs = aliasF32(st.Dtype, raw)
		}
		if xs == nil {
			xs = decodeValues(st.Dtype, raw)
		}
		values[i] = xs
		u.Set(group, key, &Tensor{Shape: st.Shape, Data: xs})
	}
	// One pass over every value, on every core, after the structure is
	// known to be sound: the per-value search that names the index runs
	// only on a tensor known to hold a NaN or an infinity.
	var guard func(func()) error
	if m != nil {
		guard = m.guard
	}
	bad, err := firstNonFinite(values, guard)
	if err != nil {
		return nil, nil, err
	}
	if bad >= 0 {
		return nil, nil, nonFiniteError(name, f.Tensors[bad].Name, values[bad])
	}
	if err := checkFactorPairs(u, name, isDAF); err != nil {
		return nil, nil, err
	}
	if g, k, r, ok := rankConflict(u); !ok {
		diskName := k
		if isDAF {
			diskName = g + "/" + k
		}
		return nil, nil, corrupt(name, "metadata "+KeyRank, "%d, but tensor %q has rank %d", u.Meta.Rank, diskName, r)
	}
	return u, f, nil
}

// rankConflict finds a LoRA factor whose rank differs from the metadata's
// daf.rank (when it is set); ok is false if there is one. Factors have at
// least two dimensions (checkFactorPairs).
func rankConflict(u *Update) (group, key string, rank int, ok bool) {
	if u.Meta.Rank == 0 {
		return "", "", 0, true
	}
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			if _, factor, isFactor := SplitLoRAKey(k); isFactor {
				if r := factorRank(u.Groups[g][k], factor); r != u.Meta.Rank {
					return g, k, r, false
				}
			}
		}
	}
	return "", "", 0, true
}

// factorRank is r of a LoRA factor: A is r×in, B is out×r.
func factorRank(t *Tensor, factor string) int {
	if len(t.Shape) < 2 {
		return -1
	}
	if factor == "B" {
		return t.Shape[1]
	}
	return t.Shape[0]
}

// checkFactorPairs rejects LoRA factors that cannot be multiplied: a factor
// with fewer than two dimensions, or lora_A and lora_B of one module with
// different ranks (A is r×in, B is out×r). A module missing one half is
// allowed here; LoRA products refuse it where they need it.
func checkFactorPairs(u *Update, file string, isDAF bool) error {
	for _, g := range u.GroupNames() {
		ranks := map[string]int{}
		for _, k := range u.Keys(g) {
			module, factor, ok := SplitLoRAKey(k)
			if !ok {
				continue
			}
			diskName := k
			if isDAF {
				diskName = g + "/" + k
			}
			t := u.Groups[g][k]
			if len(t.Shape) < 2 {
				return corrupt(file, tensorPart(diskName), "LoRA factor has shape %v, want at least 2 dimensions", t.Shape)
			}
			r := t.Shape[0]
			if factor == "B" {
				r = t.Shape[1]
			}
			if prev, seen := ranks[module]; seen && prev != r {
				return corrupt(file, tensorPart(diskName), "rank %d does not match the other factor of module %s (rank %d)", r, printable(module), prev)
			}
			ranks[module] = r
		}
	}
	return nil
}

// ReadFile reads an update file, or a PEFT adapter directory (as group
// "all"; see ReadPEFT). daf.node defaults to the file's base name without
// .safetensors (for a directory, its name).
func ReadFile(path string) (*Update, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		u, _, err := ReadPEFT(path)
		return u, err
	}
	data, err := readRegular(path)
	if err != nil {
		return nil, err
	}
	return Unmarshal(data, path)
}

// readRegular reads a regular file (following symlinks). A device such as
// /dev/zero would never end and a FIFO would block, so neither is opened.
func readRegular(path string) ([]byte, error) {
	return readRegularMax(path, 0)
}

// readRegularMax is readRegular refusing a file of more than limit bytes
// (0: no limit) without reading it.
func readRegularMax(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if limit == 0 {
		return os.ReadFile(path)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, larger than the %d-byte limit", path, st.Size(), limit)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The file may have grown since Stat.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than the %d-byte limit", path, limit)
	}
	return data, nil
}

// WriteFile writes an update file atomically: a crash leaves either the old
// file or the new one, never a torn one.
//
// The tensors are streamed to the file from where they lie: writing an
// update needs no second copy of its values in memory.
func WriteFile(path string, u *Update) error {
	e, err := encodeUpdate(u)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFunc(path, 0o644, e.writeTo)
}
