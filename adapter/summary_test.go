package adapter

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSummarizeUpdateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mixed.safetensors")
	data := rawFile(
		`{"__metadata__":{"daf.format":"talora-update/1","daf.rank":"1"},`+
			`"coarse/m.lora_A.weight":{"dtype":"F16","shape":[1,2],"data_offsets":[0,4]},`+
			`"coarse/m.lora_B.weight":{"dtype":"BF16","shape":[2,1],"data_offsets":[4,8]},`+
			`"fine/head.weight":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`,
		append(append(u16Bytes(0x4200, 0x4400), u16Bytes(0x3f80, 0xbf80)...), f32Bytes(3, 4)...))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Summarize(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Format != Format || len(s.Groups) != 2 || s.Groups[0].Name != "coarse" || s.Groups[0].Range != "[700, 1000)" {
		t.Fatalf("summary %+v", s)
	}
	a := s.Groups[0].Tensors[0]
	// F16 0x4200 = 3, 0x4400 = 4: the norm is 5.
	if a.Dtype != "F16" || a.L2 != 5 || a.Bytes != 4 || !reflect.DeepEqual(a.Shape, []int{1, 2}) {
		t.Errorf("lora_A %+v", a)
	}
	if b := s.Groups[0].Tensors[1]; b.Dtype != "BF16" || math.Abs(b.L2-math.Sqrt2) > 1e-15 {
		t.Errorf("lora_B %+v", b)
	}
	if m := s.Groups[0].Modules; len(m) != 1 || m[0] != (ModuleSummary{Module: "m", Rank: 1, HasA: true, HasB: true}) {
		t.Errorf("modules %+v", m)
	}
	if len(s.Groups[1].Modules) != 0 || s.Groups[1].Tensors[0].L2 != 5 {
		t.Errorf("fine group %+v", s.Groups[1])
	}
	want := Totals{Tensors: 3, Modules: 1, Params: 6, Bytes: 16, FileBytes: int64(len(data))}
	if s.Totals != want {
		t.Errorf("totals %+v, want %+v", s.Totals, want)
	}
	if s.Metadata["daf.node"] != "mixed" || s.Metadata["daf.rank"] != "1" || s.Metadata["daf.samples"] != "1" || s.Metadata["daf.lora_alpha"] != "= rank" {
		t.Errorf("metadata %v", s.Metadata)
	}
}

func TestSummarizeRealPEFT(t *testing.T) {
	needRealPEFT(t)
	s, err := Summarize(realPEFT)
	if err != nil {
		t.Fatal(err)
	}
	if s.Format != "plain" || len(s.Groups) != 1 || s.Groups[0].Name != PlainGroup || s.PEFT == nil {
		t.Fatalf("summary %+v", s)
	}
	if s.Totals.Modules != 12 || s.Totals.Tensors != 25 || s.Totals.Params != 299520 || s.Totals.Bytes != 4*299520 || s.Totals.FileBytes != 1201208 {
		t.Errorf("totals %+v", s.Totals)
	}
	for _, m := range s.Groups[0].Modules {
		if m.Rank != 8 || !m.HasA || !m.HasB {
			t.Errorf("module %+v", m)
		}
	}
	if _, ok := s.Metadata[KeyFormat]; ok {
		t.Error("a plain adapter reports a daf.format")
	}
}
