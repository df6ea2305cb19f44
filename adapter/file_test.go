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

	"pgregory.net/rapid"
)

func TestMarshalRoundTrip(t *testing.T) {
	u := sampleUpdate()
	data, err := Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	if hl := int(data[0]) | int(data[1])<<8; (8+hl)%8 != 0 {
		t.Errorf("header length %d leaves the data section unaligned", hl)
	}
	got, err := Unmarshal(data, "updates/other-name.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	sameUpdate(t, got, u)

	again, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(data) {
		t.Error("Marshal is not deterministic across a round trip")
	}
}

func TestMarshalWritesEveryMetadataKey(t *testing.T) {
	data, err := Marshal(sampleUpdate())
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseSafetensors(data, "x")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"daf.format": "talora-update/1", "daf.kind": "delta", "daf.groups": "coarse:700-1000,domain:300-700,fine:0-300",
		"daf.node": "n1", "daf.round": "7", "daf.samples": "128", "daf.tier": "tenant", "daf.scope": "acme",
		"daf.rank": "2", "daf.lora_alpha": "4", "trainer": "dlm",
		"daf.quality": `{"domain":{"ppl_before":12,"ppl_after":10.5,"task_accuracy":{"qa":0.61}}}`,
	}
	for k, v := range want {
		if f.Metadata[k] != v {
			t.Errorf("%s = %q, want %q", k, f.Metadata[k], v)
		}
	}
	for _, st := range f.Tensors {
		if st.Dtype != DtypeF32 {
			t.Errorf("%s written as %s", st.Name, st.Dtype)
		}
	}
	if len(f.Tensors) != 6 || f.Tensors[0].Name != "coarse/base_model.model.layers.0.attn.q_proj.lora_A.weight" {
		t.Errorf("tensor names: %+v", f.Tensors)
	}
}

func TestMetadataDefaults(t *testing.T) {
	data := rawFile(`{"__metadata__":{"daf.format":"talora-update/1"},"fine/m.lora_A.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}`, f32Bytes(1, 2))
	u, err := Unmarshal(data, "/tmp/site-7.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	want := New().Meta
	want.Node = "site-7"
	if !reflect2(normMeta(u.Meta), normMeta(want)) {
		t.Fatalf("got %+v\nwant %+v", u.Meta, want)
	}
	if u.Get("fine", "m.lora_A.weight").Data[1] != 2 {
		t.Fatal("tensor not read")
	}
}

func reflect2(a, b Metadata) bool { return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b) }

func TestReadsF16AndBF16Exactly(t *testing.T) {
	half := []uint16{0x0000, 0x8000, 0x0001, 0x03ff, 0x3c00, 0xc000, 0x7bff, 0x3555}
	bf := []uint16{0x3f80, 0x8000, 0x0001, 0x7f7f, 0xc040, 0x3eaa}
	data := rawFile(
		`{"__metadata__":{"daf.format":"talora-update/1"},`+
			`"coarse/h":{"dtype":"F16","shape":[2,4],"data_offsets":[0,16]},`+
			`"domain/b":{"dtype":"BF16","shape":[6],"data_offsets":[16,28]}}    `,
		append(u16Bytes(half...), u16Bytes(bf...)...))
	u, err := Unmarshal(data, "mixed.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range half {
		got := u.Get("coarse", "h").Data[i]
		if want := halfReference(h); float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Errorf("F16 %#04x read as %v, want %v", h, got, want)
		}
	}
	for i, b := range bf {
		if got := u.Get("domain", "b").Data[i]; math.Float32bits(got) != uint32(b)<<16 {
			t.Errorf("BF16 %#04x read as %#08x", b, math.Float32bits(got))
		}
	}
}

func TestPlainFileIsGroupAll(t *testing.T) {
	data := rawFile(`{"__metadata__":{"format":"pt"},"m.lora_A.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"m.lora_B.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[4,8]}}`, f32Bytes(3, 4))
	u, err := Unmarshal(data, "adapter.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if u.Meta.Kind != KindAdapter || u.Get(PlainGroup, "m.lora_B.weight").Data[0] != 4 || u.Meta.Extra["format"] != "pt" || u.Meta.Node != "adapter" {
		t.Fatalf("got %+v %v", u.Meta, u.Groups)
	}
}

// hostileFile is a file every reader must refuse, with the error it must
// give.
type hostileFile struct {
	name string
	data []byte
	part string // what the error must name besides the file
	err  error
}

func hostileFiles() []hostileFile {
	ok := `"coarse/t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`
	meta := `"__metadata__":{"daf.format":"talora-update/1"}`
	hdr := func(entries ...string) string {
		return "{" + strings.Join(append([]string{meta}, entries...), ",") + "}"
	}
	two := f32Bytes(1, 2)
	return []hostileFile{
		{"short file", []byte{1, 2, 3}, "header", ErrCorrupt},
		{"header length past end", append(u16Bytes(100, 0, 0, 0), "{}"...), "header", ErrCorrupt},
		{"header length over limit", append(u16Bytes(0, 0x0641, 0, 0), "{}"...), "100 MiB", ErrCorrupt},
		{"header length near 2^64", append(u16Bytes(0xffff, 0xffff, 0xffff, 0xffff), "{}"...), "header", ErrCorrupt},
		{"invalid JSON", rawFile(`{"coarse/t":`, nil), "header", ErrCorrupt},
		{"header not an object", rawFile(`[1,2]`, nil), "header", ErrCorrupt},
		{"bytes after JSON", rawFile(hdr(ok)+"{}", two), "header", ErrCorrupt},
		{"duplicate name", rawFile(hdr(ok, `"coarse/t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}`), f32Bytes(1, 2, 3, 4)), `"coarse/t"`, ErrCorrupt},
		{"unknown dtype", rawFile(hdr(`"coarse/t":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"unsupported dtype", rawFile(hdr(`"coarse/t":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"negative dim", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"huge dim", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"dim beyond int64", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[1e30],"data_offsets":[0,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"overflowing product", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[2147483647,2147483647,2147483647,4],"data_offsets":[0,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"zero dim then huge", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[0,2147483647],"data_offsets":[0,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"offsets past data", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}`), two), `"coarse/t"`, ErrCorrupt},
		{"offsets reversed", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}`), two), `"coarse/t"`, ErrCorrupt},
		{"negative offset", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}`), two), `"coarse/t"`, ErrCorrupt},
		{"three offsets", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"shape vs bytes", rawFile(hdr(`"coarse/t":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"missing field", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[2]}`), two), `"coarse/t"`, ErrCorrupt},
		{"entry not object", rawFile(hdr(`"coarse/t":7`), two), `"coarse/t"`, ErrCorrupt},
		{"overlap", rawFile(hdr(ok, `"coarse/u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`), two), `"coarse/u"`, ErrCorrupt},
		{"hole", rawFile(hdr(`"coarse/t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`), two), `"coarse/t"`, ErrCorrupt},
		{"trailing data", rawFile(hdr(ok), f32Bytes(1, 2, 3)), `"coarse/t"`, ErrCorrupt},
		{"data without tensors", rawFile(hdr(), two), "header", ErrCorrupt},
		{"metadata not strings", rawFile(`{"__metadata__":{"daf.round":7}}`, nil), "__metadata__", ErrCorrupt},
		{"future format", rawFile(`{"__metadata__":{"daf.format":"talora-update/2"}}`, nil), "daf.format", ErrCorrupt},
		{"bad kind", rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.kind":"full"}}`, nil), "daf.kind", ErrCorrupt},
		{"bad round", rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.round":"-1"}}`, nil), "daf.round", ErrCorrupt},
		{"bad samples", rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.samples":"NaN"}}`, nil), "daf.samples", ErrCorrupt},
		{"bad tier", rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.tier":"world"}}`, nil), "daf.tier", ErrCorrupt},
		{"bad groups", rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.groups":"coarse:700-1001"}}`, nil), "daf.groups", ErrCorrupt},
		{"bad rank", rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.rank":"0"}}`, nil), "daf.rank", ErrCorrupt},
		{"bad alpha", rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.lora_alpha":"Inf"}}`, nil), "daf.lora_alpha", ErrCorrupt},
		{"accuracy above 1", rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.quality":"{\"fine\":{\"task_accuracy\":{\"qa\":1e308}}}"}}`, nil), "task_accuracy.qa", ErrCorrupt},
		{"bad quality", rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.quality":"{\"fine\":"}}`, nil), "daf.quality", ErrCorrupt},
		{"name without group", rawFile(hdr(`"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`), two), `"t"`, ErrCorrupt},
		{"empty key", rawFile(hdr(`"coarse/":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`), two), `"coarse/"`, ErrCorrupt},
		{"1-D LoRA factor", rawFile(hdr(`"coarse/m.lora_A.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`), two), `"coarse/m.lora_A.weight"`, ErrCorrupt},
		{"NaN value", rawFile(hdr(ok), f32Bytes(1, float32(math.NaN()))), `"coarse/t"`, ErrNonFinite},
		{"F16 infinity", rawFile(hdr(`"coarse/t":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}`), u16Bytes(0x3c00, 0xfc00)), `"coarse/t"`, ErrNonFinite},
	}
}

// Every hostile file is refused with ErrCorrupt (or ErrNonFinite), and the
// error names the file and the tensor or key at fault.
func TestHostileFiles(t *testing.T) {
	cases := hostileFiles()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := Unmarshal(c.data, "hostile.safetensors")
			if err == nil {
				t.Fatalf("accepted: %+v", u)
			}
			if c.err != nil && !errors.Is(err, c.err) {
				t.Errorf("error %v does not wrap %v", err, c.err)
			}
			if !strings.HasPrefix(err.Error(), "hostile.safetensors: ") || !strings.Contains(err.Error(), c.part) {
				t.Errorf("error %q does not name the file and %s", err, c.part)
			}
		})
	}
}

func TestRankMismatchIsCorrupt(t *testing.T) {
	data := rawFile(`{"__metadata__":{"daf.format":"talora-update/1"},"coarse/m.lora_A.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"coarse/m.lora_B.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}`, f32Bytes(1, 2, 3))
	if _, err := Unmarshal(data, "r.safetensors"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `r.safetensors: tensor "coarse/m.lora_B.weight": rank 1 does not match the other factor of module m (rank 2)`) {
		t.Fatalf("got %v", err)
	}
}

// A header that claims a huge tensor must not make the reader allocate in
// proportion to the claim.
func TestHostileFileAllocatesLittle(t *testing.T) {
	claims := [][]byte{
		rawFile(`{"coarse/t":{"dtype":"F32","shape":[268435456],"data_offsets":[0,1073741824]}}`, f32Bytes(1)),
		rawFile(`{"coarse/t":{"dtype":"F32","shape":[65536,65536],"data_offsets":[0,8]}}`, f32Bytes(1, 2)),
		append(u16Bytes(0, 0x0600, 0, 0), "{}"...),
	}
	for i, data := range claims {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := Unmarshal(data, "claim.safetensors"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("claim %d accepted: %v", i, err)
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
			t.Errorf("claim %d: reader allocated %d bytes for a %d-byte file", i, grew, len(data))
		}
	}
}

func TestMarshalRefusesWhatReadersRefuse(t *testing.T) {
	cases := map[string]func(u *Update){
		"NaN": func(u *Update) {
			u.Get("fine", "base_model.model.layers.0.attn.q_proj.lora_A.weight").Data[0] = float32(math.NaN())
		},
		"shape mismatch": func(u *Update) { u.Set("fine", "x", &Tensor{Shape: []int{3}, Data: []float32{1}}) },
		"slash in group": func(u *Update) { u.Set("a/b", "x", NewTensor(1)) },
		"empty key":      func(u *Update) { u.Set("fine", "", NewTensor(1)) },
		"bad tier":       func(u *Update) { u.Meta.Tier = "world" },
		"bad samples":    func(u *Update) { u.Meta.Samples = math.Inf(1) },
		"bad groups":     func(u *Update) { u.Meta.Groups = []GroupRange{{"a", 5, 5}} },
		"bad quality":    func(u *Update) { u.Meta.Quality = map[string]GroupQuality{"fine": {PPLAfter: math.NaN()}} },
		"overlapping groups": func(u *Update) {
			u.Meta.Groups = []GroupRange{{"coarse", 600, 1000}, {"domain", 300, 700}, {"fine", 0, 300}}
		},
		"too many dims":   func(u *Update) { u.Set("fine", "x", NewTensor(make([]int, MaxDims+1)...)) },
		"non-UTF-8 key":   func(u *Update) { u.Set("fine", "x\xff", NewTensor(1)) },
		"non-UTF-8 group": func(u *Update) { u.Set("f\xffine", "x", NewTensor(1)) },
		"non-UTF-8 node":  func(u *Update) { u.Meta.Node = "n\xff" },
		"non-UTF-8 extra": func(u *Update) { u.Meta.Extra = map[string]string{"note": "\xff"} },
	}
	for name, mutate := range cases {
		u := sampleUpdate()
		mutate(u)
		if _, err := Marshal(u); err == nil {
			t.Errorf("%s: Marshal accepted it", name)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "n1.safetensors")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := sampleUpdate()
	if err := WriteFile(path, u); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameUpdate(t, got, u)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	bad := sampleUpdate()
	bad.Meta.Tier = "world"
	if err := WriteFile(path, bad); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("invalid update: %v", err)
	}
	if again, _ := ReadFile(path); again == nil {
		t.Error("a refused write damaged the existing file")
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x.safetensors"), u); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

// Random updates survive Marshal and Unmarshal bit for bit.
func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		u := New()
		u.Meta.Node = rapid.StringMatching(`[a-z0-9-]{0,12}`).Draw(rt, "node")
		u.Meta.Round = rapid.Uint64().Draw(rt, "round")
		u.Meta.Samples = rapid.Float64Range(0, 1e9).Draw(rt, "samples")
		u.Meta.Tier = rapid.SampledFrom([]string{"private", "group", "tenant", "public"}).Draw(rt, "tier")
		u.Meta.Kind = rapid.SampledFrom([]Kind{KindDelta, KindAdapter}).Draw(rt, "kind")
		u.Meta.FanInFanOut = rapid.Bool().Draw(rt, "fifo")
		for g := range rapid.IntRange(0, 3).Draw(rt, "groups") {
			group := []string{"coarse", "domain", "fine"}[g]
			for k := range rapid.IntRange(1, 3).Draw(rt, "tensors") {
				shape := rapid.SliceOfN(rapid.IntRange(0, 4), 0, 3).Draw(rt, "shape")
				tn := NewTensor(shape...)
				for i := range tn.Data {
					tn.Data[i] = rapid.Float32().Filter(func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }).Draw(rt, "v")
				}
				u.Set(group, fmt.Sprintf("layers.%d.w", k), tn)
			}
		}
		data, err := Marshal(u)
		if err != nil {
			rt.Fatal(err)
		}
		got, err := Unmarshal(data, "p.safetensors")
		if err != nil {
			rt.Fatal(err)
		}
		sameUpdate(rt, got, u)
	})
}
