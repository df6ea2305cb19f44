package adapter

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Summary describes an update file or PEFT adapter for `daf inspect`: every
// tensor as stored, each LoRA module's rank, the groups, the metadata with
// defaults filled in, and totals.
type Summary struct {
	Path     string            `json:"path"`
	File     string            `json:"file"`   // the safetensors file actually read
	Format   string            `json:"format"` // talora-update/1, or "plain" for a file without daf.format
	Metadata map[string]string `json:"metadata"`
	Groups   []GroupSummary    `json:"groups"`
	PEFT     *PEFTConfig       `json:"peft_config,omitempty"`
	Totals   Totals            `json:"totals"`
}

// GroupSummary is one timestep group of a summary.
type GroupSummary struct {
	Name    string          `json:"name"`
	Range   string          `json:"range,omitempty"` // "[start, end)" from daf.groups, if listed there
	Tensors []TensorSummary `json:"tensors"`
	Modules []ModuleSummary `json:"modules"`
	Params  int             `json:"params"`
}

// TensorSummary is one stored tensor.
type TensorSummary struct {
	Name   string  `json:"name"` // the name in the file
	Key    string  `json:"key"`  // the PEFT key
	Shape  []int   `json:"shape"`
	Dtype  string  `json:"dtype"`
	L2     float64 `json:"l2"`
	Params int     `json:"params"`
	Bytes  int64   `json:"bytes"`
}

// ModuleSummary is one LoRA module (a lora_A/lora_B pair) of a group.
type ModuleSummary struct {
	Module string `json:"module"`
	Rank   int    `json:"rank"`
	HasA   bool   `json:"has_a"`
	HasB   bool   `json:"has_b"`
}

// Totals counts parameters and stored tensor bytes over every group.
type Totals struct {
	Tensors   int   `json:"tensors"`
	Modules   int   `json:"modules"`
	Params    int   `json:"params"`
	Bytes     int64 `json:"bytes"`      // tensor data as stored
	FileBytes int64 `json:"file_bytes"` // the whole file, header included
}

// Summarize reads an update file or PEFT adapter (file or directory) with
// the same checks as ReadFile and describes it.
func Summarize(path string) (*Summary, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	file := path
	if st.IsDir() {
		file = filepath.Join(path, PEFTModelFile)
	}
	var u *Update
	var cfg *PEFTConfig
	if st.IsDir() || filepath.Base(path) == PEFTModelFile {
		if u, cfg, err = ReadPEFT(path); err != nil {
			return nil, err
		}
	}
	data, err := readRegular(file)
	if err != nil {
		return nil, err
	}
	fu, f, err := unmarshal(data, file, nil)
	if err != nil {
		return nil, err
	}
	if u == nil {
		u = fu
	}
	_, isDAF := f.Metadata[KeyFormat]
	s := &Summary{Path: path, File: file, Format: "plain", PEFT: cfg, Metadata: effectiveMetadata(u.Meta)}
	if isDAF {
		s.Format = Format
	} else {
		// A plain adapter has no timestep groups of its own: only "all".
		delete(s.Metadata, KeyFormat)
		delete(s.Metadata, KeyGroups)
	}
	s.Totals.FileBytes = int64(len(data))

	stored := map[string]storedTensor{}
	for _, t := range f.Tensors {
		stored[t.Name] = t
	}
	ranges := map[string]GroupRange{}
	for _, g := range u.Meta.Groups {
		ranges[g.Name] = g
	}
	for _, g := range u.GroupNames() {
		gs := GroupSummary{Name: g, Tensors: []TensorSummary{}, Modules: []ModuleSummary{}}
		if r, ok := ranges[g]; ok {
			gs.Range = "[" + strconv.Itoa(r.Start) + ", " + strconv.Itoa(r.End) + ")"
		}
		modules := map[string]*ModuleSummary{}
		for _, k := range u.Keys(g) {
			name := k
			if isDAF {
				name = g + "/" + k
			}
			t, st := u.Groups[g][k], stored[name]
			gs.Tensors = append(gs.Tensors, TensorSummary{
				Name: name, Key: k, Shape: nonNilShape(t.Shape), Dtype: st.Dtype, L2: t.L2(),
				Params: len(t.Data), Bytes: st.End - st.Begin,
			})
			gs.Params += len(t.Data)
			s.Totals.Tensors++
			s.Totals.Params += len(t.Data)
			s.Totals.Bytes += st.End - st.Begin
			if module, factor, ok := SplitLoRAKey(k); ok {
				m := modules[module]
				if m == nil {
					m = &ModuleSummary{Module: module}
					modules[module] = m
				}
				if factor == "A" {
					m.HasA, m.Rank = true, t.Shape[0]
				} else {
					m.HasB, m.Rank = true, t.Shape[1]
				}
			}
		}
		for _, m := range modules {
			gs.Modules = append(gs.Modules, *m)
		}
		sort.Slice(gs.Modules, func(i, j int) bool { return gs.Modules[i].Module < gs.Modules[j].Module })
		s.Totals.Modules += len(gs.Modules)
		s.Groups = append(s.Groups, gs)
	}
	if s.Groups == nil {
		s.Groups = []GroupSummary{}
	}
	return s, nil
}

// effectiveMetadata renders metadata as it would be written, defaults
// included, so a reader sees what the update means, not only what the
// file spelled out.
func effectiveMetadata(m Metadata) map[string]string {
	out := encodeMetadata(m)
	out[KeyFanInFanOut] = strconv.FormatBool(m.FanInFanOut)
	if m.Rank == 0 {
		out[KeyRank] = "from shapes"
	}
	if m.LoraAlpha == 0 {
		out[KeyLoraAlpha] = "= rank"
	}
	return out
}
