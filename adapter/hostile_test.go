package adapter

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Readers open only regular files: /dev/zero never ends and a FIFO blocks,
// and a PEFT directory may hold a symlink to either.
func TestReadersRefuseNonRegularFiles(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	dir := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir, PEFTModelFile)); err != nil {
		t.Skip(err)
	}
	model := filepath.Join(dir, PEFTModelFile)
	for name, read := range map[string]func() error{
		"ReadFile":           func() error { _, err := ReadFile("/dev/zero"); return err },
		"Summarize":          func() error { _, err := Summarize("/dev/zero"); return err },
		"ReadPEFT dir":       func() error { _, _, err := ReadPEFT(dir); return err },
		"Summarize dir":      func() error { _, err := Summarize(dir); return err },
		"ReadFile dir file":  func() error { _, err := ReadFile(model); return err },
		"ReadFileMapped":     func() error { _, _, err := ReadFileMapped("/dev/zero"); return err },
		"ReadFileMapped dir": func() error { _, _, err := ReadFileMapped(dir); return err },
	} {
		err := read()
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s: got %v", name, err)
		}
	}
	peft := t.TempDir()
	os.WriteFile(filepath.Join(peft, PEFTModelFile), rawFile(`{}`, nil), 0o644)
	if err := os.Symlink("/dev/zero", filepath.Join(peft, PEFTConfigFile)); err != nil {
		t.Skip(err)
	}
	if _, _, err := ReadPEFT(peft); err == nil || !strings.Contains(err.Error(), PEFTConfigFile) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("config on /dev/zero: got %v", err)
	}
}

func TestHostileHeadersBeyondTheIssueList(t *testing.T) {
	ok := `"coarse/t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`
	meta := func(kv string) string { return `"__metadata__":{"daf.format":"talora-update/1"` + kv + `}` }
	two := f32Bytes(1, 2)
	many := strings.TrimSuffix(strings.Repeat("1,", MaxDims+1), ",")
	cases := []struct {
		name string
		data []byte
		want string // besides the file name
	}{
		// Go's JSON decoder would turn the bad byte into U+FFFD and so
		// silently rename the tensor.
		{"invalid UTF-8 name", rawFile("{"+meta("")+",\"coarse/t\xff\""+`:{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, two), "header: not valid UTF-8"},
		{"overlapping groups", rawFile("{"+meta(`,"daf.groups":"coarse:600-1000,domain:300-700,fine:0-300"`)+","+ok+"}", two), `metadata daf.groups: groups "coarse" and "domain" overlap on t in [600, 700)`},
		{"too many dims", rawFile(`{"coarse/t":{"dtype":"F32","shape":[`+many+`],"data_offsets":[0,4]}}`, f32Bytes(1)), fmt.Sprintf(`tensor "coarse/t": shape has more than %d dimensions`, MaxDims)},
		{"entry not an object", rawFile(`{"coarse/t":7}`, two), `tensor "coarse/t": entry is not a JSON object`},
		{"entry null", rawFile(`{"coarse/t":null}`, two), `tensor "coarse/t": entry is not a JSON object`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Unmarshal(c.data, "h.safetensors")
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "h.safetensors: "+c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "struct {") {
				t.Errorf("error leaks Go types: %v", err)
			}
		})
	}
}

func TestTensorCountIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i <= MaxTensors; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"t%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`, i)
	}
	b.WriteString("}")
	_, err := Unmarshal(rawFile(b.String(), nil), "many.safetensors")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d tensors", MaxTensors)) {
		t.Fatalf("got %v", err)
	}
}

// A shape of millions of dimensions is refused before it is decoded into
// slices many times the header's size (16 bytes per 2-byte "1,"). The JSON
// decoder's own buffers and copies of the header stay below 8 times.
func TestManyDimensionsAllocateLittle(t *testing.T) {
	header := `{"coarse/t":{"dtype":"F32","shape":[` + strings.TrimSuffix(strings.Repeat("1,", 1<<20), ",") + `],"data_offsets":[0,4]}}`
	data := rawFile(header, f32Bytes(1))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := Unmarshal(data, "dims.safetensors"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("accepted: %v", err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8*uint64(len(data)) {
		t.Errorf("reader allocated %d bytes for a %d-byte file", grew, len(data))
	}
}

func TestPEFTConfigValuesThatChangeMeaning(t *testing.T) {
	dir := t.TempDir()
	model := rawFile(`{"m.lora_A.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"m.lora_B.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[4,8]}}`, f32Bytes(1, 2))
	os.WriteFile(filepath.Join(dir, PEFTModelFile), model, 0o644)
	for _, c := range []struct{ config, part string }{
		// lora_alpha 0 scales the adapter to nothing in PEFT, while 0 in
		// our metadata means "alpha = r": reading it would change the
		// adapter's effect.
		{`{"peft_type":"LORA","r":1,"lora_alpha":0}`, "config lora_alpha: 0: want a finite number > 0"},
		{`null`, "config: not a JSON object"},
		{`"LORA"`, "config: not a JSON object"},
	} {
		os.WriteFile(filepath.Join(dir, PEFTConfigFile), []byte(c.config), 0o644)
		_, _, err := ReadPEFT(dir)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.part) {
			t.Errorf("config %s: got %v, want %q", c.config, err, c.part)
		}
	}
}

// Names come from the file and may hold newlines or terminal escapes; an
// error about them is still one line.
func TestErrorsQuoteNamesFromTheFile(t *testing.T) {
	dafMeta := func(kv string) string { return `"__metadata__":{"daf.format":"talora-update/1",` + kv + `}` }
	cases := map[string][]byte{
		"quality group":           rawFile("{"+dafMeta(`"daf.quality":"{\"fi\\nne\":{\"ppl_after\":-1}}"`)+"}", nil),
		"quality task":            rawFile("{"+dafMeta(`"daf.quality":"{\"fine\":{\"task_accuracy\":{\"q\\u001ba\":-1}}}"`)+"}", nil),
		"module":                  rawFile(`{"m\nx.lora_A.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"m\nx.lora_B.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}`, f32Bytes(1, 2, 3)),
		"shape spread over lines": rawFile("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,\n2.5],\"data_offsets\":[0,4]}}", f32Bytes(1)),
	}
	for name, data := range cases {
		_, err := Unmarshal(data, "q.safetensors")
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v", name, err)
			continue
		}
		if strings.ContainsAny(err.Error(), "\n\x1b") {
			t.Errorf("%s: error is not one clean line: %q", name, err)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, PEFTModelFile), rawFile(`{}`, nil), 0o644)
	os.WriteFile(filepath.Join(dir, PEFTConfigFile), []byte(`{"peft_type":"LORA","r":1,"lora_alpha":1,"rank_pattern":{"x\ny":0}}`), 0o644)
	if _, _, err := ReadPEFT(dir); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("rank_pattern module: %q", err)
	}
	u := New()
	u.Set("fine", "a\nb", &Tensor{Shape: []int{1}, Data: []float32{float32(math.NaN())}})
	if err := u.CheckFinite(); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("CheckFinite: %q", err)
	}
}

// ExportPEFT writes only configs that ReadPEFT reads back.
func TestExportRefusesConfigsReadersRefuse(t *testing.T) {
	u := New()
	u.Set("fine", "m.lora_A.weight", NewTensor(1, 2))
	u.Set("fine", "m.lora_B.weight", NewTensor(2, 1))
	for name, cfg := range map[string]PEFTConfig{
		"negative alpha":    {LoraAlpha: -2},
		"zero rank pattern": {R: 1, RankPattern: map[string]int{"m": 0}},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		if err := ExportPEFT(u, "fine", dir, cfg); err == nil {
			_, _, rerr := ReadPEFT(dir)
			t.Errorf("%s: exported; reading back: %v", name, rerr)
		}
	}
	v := New()
	v.Set("fine", "head.weight", NewTensor(2))
	if err := ExportPEFT(v, "fine", filepath.Join(t.TempDir(), "out"), PEFTConfig{R: -1}); err == nil {
		t.Errorf("r = -1 exported")
	}
}

// daf.rank is a claim about the factors' shapes; a file whose factors
// contradict it is as inconsistent as a PEFT adapter whose factors
// contradict adapter_config.json's r.
func TestRankMetadataMustMatchFactors(t *testing.T) {
	data := rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.rank":"4"},"fine/m.lora_A.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"fine/m.lora_B.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]}}`, f32Bytes(1, 2, 3, 4))
	_, err := Unmarshal(data, "r.safetensors")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `r.safetensors: metadata daf.rank: 4, but tensor "fine/m.lora_A.weight" has rank 2`) {
		t.Fatalf("got %v", err)
	}
	u := New()
	u.Meta.Rank = 4
	u.Set("fine", "m.lora_A.weight", NewTensor(2, 1))
	if _, err := Marshal(u); err == nil || !strings.Contains(err.Error(), "daf.rank") {
		t.Fatalf("Marshal: %v", err)
	}

	// A PEFT adapter whose rank_pattern gives modules different ranks has
	// no single rank: its metadata leaves the rank to the shapes, and the
	// update can be written and read back.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, PEFTModelFile), rawFile(`{"a.lora_A.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"b.lora_A.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[4,12]}}`, f32Bytes(1, 2, 3)), 0o644)
	os.WriteFile(filepath.Join(dir, PEFTConfigFile), []byte(`{"peft_type":"LORA","r":1,"lora_alpha":1,"rank_pattern":{"b":2}}`), 0o644)
	p, _, err := ReadPEFT(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Meta.Rank != 0 {
		t.Errorf("mixed ranks: metadata rank %d, want 0 (from shapes)", p.Meta.Rank)
	}
	out, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(out, "back.safetensors"); err != nil {
		t.Fatal(err)
	}
}

// A PEFT adapter read as "." (from inside its directory) is named after the
// directory, not ".".
func TestPEFTNodeNameFromRelativePath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-adapter")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, PEFTModelFile), rawFile(`{}`, nil), 0o644)
	t.Chdir(dir)
	for _, path := range []string{".", "./", PEFTModelFile} {
		u, _, err := ReadPEFT(path)
		if err != nil {
			t.Fatal(err)
		}
		if u.Meta.Node != "my-adapter" {
			t.Errorf("ReadPEFT(%q): node %q, want my-adapter", path, u.Meta.Node)
		}
	}
}

// adapter_config.json is a few hundred bytes; a huge one is refused
// without being read into memory.
func TestHugePEFTConfigIsRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, PEFTModelFile), rawFile(`{}`, nil), 0o644)
	f, err := os.Create(filepath.Join(dir, PEFTConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(8 << 30) // sparse: no disk used
	f.Close()
	_, _, err = ReadPEFT(dir)
	if err == nil || !strings.Contains(err.Error(), PEFTConfigFile) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}
