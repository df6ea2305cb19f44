package adapter

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// realPEFT is the real adapter saved by Hugging Face PEFT (see
// shared/cases/README.md). shared/ sits next to the repository root; the
// second candidate covers a checkout one directory deeper (a worktree).
var realPEFT = func() string {
	for _, dir := range []string{"../../shared/cases/peft-gpt2-lora", "../../../shared/cases/peft-gpt2-lora"} {
		if _, err := os.Stat(filepath.Join(dir, PEFTModelFile)); err == nil {
			return dir
		}
	}
	return "../../shared/cases/peft-gpt2-lora"
}()

func needRealPEFT(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(realPEFT, PEFTModelFile)); err != nil {
		t.Skipf("real PEFT adapter not present: %v", err)
	}
}

func TestReadRealPEFTAdapter(t *testing.T) {
	needRealPEFT(t)
	u, cfg, err := ReadPEFT(realPEFT)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.GroupNames(); !reflect.DeepEqual(got, []string{PlainGroup}) {
		t.Fatalf("groups %v", got)
	}
	if n := len(u.Keys(PlainGroup)); n != 25 {
		t.Errorf("%d tensors, want 24 LoRA factors + score.weight", n)
	}
	if u.NumParams() != 299520 {
		t.Errorf("%d parameters, want 299520", u.NumParams())
	}
	if u.Meta.Kind != KindAdapter || u.Meta.Rank != 8 || u.Meta.LoraAlpha != 8 || !u.Meta.FanInFanOut || u.Meta.Node != "peft-gpt2-lora" {
		t.Errorf("metadata %+v", u.Meta)
	}
	if cfg.R != 8 || cfg.LoraAlpha != 8 || !cfg.FanInFanOut || !reflect.DeepEqual(cfg.TargetModules, []string{"c_attn"}) || cfg.PEFTType != "LORA" || cfg.TaskType != "SEQ_CLS" || cfg.BaseModel != "gpt2" {
		t.Errorf("config %+v", cfg)
	}
	// Norms and end values computed from the file with Python's struct module.
	known := []struct {
		key         string
		shape       []int
		l2          float64
		first, last float32
	}{
		{"base_model.model.score.weight", []int{6, 768}, 5.040871101060316, 0.05781818553805351, -0.044668715447187424},
		{"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", []int{8, 768}, 7.751752767272225, -0.17640209197998047, -0.05050153285264969},
		{"base_model.model.transformer.h.11.attn.c_attn.lora_B.weight", []int{2304, 8}, 11.057902576308265, -0.05661952495574951, -0.016259822994470596},
	}
	for _, k := range known {
		tn := u.Get(PlainGroup, k.key)
		if tn == nil {
			t.Fatalf("missing %s", k.key)
		}
		if !reflect.DeepEqual(tn.Shape, k.shape) || math.Abs(tn.L2()-k.l2) > 1e-9 || tn.Data[0] != k.first || tn.Data[len(tn.Data)-1] != k.last {
			t.Errorf("%s: shape %v l2 %v ends %v %v", k.key, tn.Shape, tn.L2(), tn.Data[0], tn.Data[len(tn.Data)-1])
		}
	}

	// ReadFile on the directory and ReadPEFT on the file alone agree.
	viaDir, err := ReadFile(realPEFT)
	if err != nil {
		t.Fatal(err)
	}
	sameUpdate(t, viaDir, u)
	viaFile, _, err := ReadPEFT(filepath.Join(realPEFT, PEFTModelFile))
	if err != nil {
		t.Fatal(err)
	}
	sameUpdate(t, viaFile, u)
}

func TestExportRealPEFTRoundTrips(t *testing.T) {
	needRealPEFT(t)
	u, cfg, err := ReadPEFT(realPEFT)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "exported")
	if err := ExportPEFT(u, PlainGroup, out, *cfg); err != nil {
		t.Fatal(err)
	}
	back, cfg2, err := ReadPEFT(out)
	if err != nil {
		t.Fatal(err)
	}
	back.Meta.Node = u.Meta.Node
	sameUpdate(t, back, u)
	if !reflect.DeepEqual(cfg2, cfg) {
		t.Errorf("config changed:\n got %+v\nwant %+v", cfg2, cfg)
	}
	// Every field of the original adapter_config.json comes back with the
	// same value.
	var orig, exported map[string]any
	readJSON(t, filepath.Join(realPEFT, PEFTConfigFile), &orig)
	readJSON(t, filepath.Join(out, PEFTConfigFile), &exported)
	if !reflect.DeepEqual(orig, exported) {
		t.Errorf("adapter_config.json differs:\n got %v\nwant %v", exported, orig)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func TestExportGroupDerivesConfig(t *testing.T) {
	u := sampleUpdate()
	u.Meta.Rank, u.Meta.LoraAlpha = 0, 0
	u.Set("domain", "base_model.model.layers.0.mlp.up_proj.lora_A.weight", NewTensor(2, 5))
	u.Set("domain", "base_model.model.layers.0.mlp.up_proj.lora_B.weight", NewTensor(5, 2))
	dir := filepath.Join(t.TempDir(), "domain-adapter")
	if err := ExportPEFT(u, "domain", dir, PEFTConfig{}); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	readJSON(t, filepath.Join(dir, PEFTConfigFile), &cfg)
	want := map[string]any{"peft_type": "LORA", "r": 2.0, "lora_alpha": 2.0, "fan_in_fan_out": false,
		"target_modules": []any{"q_proj", "up_proj"}, "rank_pattern": map[string]any{}, "alpha_pattern": map[string]any{}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config %v, want %v", cfg, want)
	}
	back, _, err := ReadPEFT(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range u.Keys("domain") {
		if !reflect.DeepEqual(back.Get(PlainGroup, k), u.Get("domain", k)) {
			t.Errorf("%s changed in export", k)
		}
	}
	if len(back.Keys(PlainGroup)) != len(u.Keys("domain")) {
		t.Errorf("exported %d tensors, want %d", len(back.Keys(PlainGroup)), len(u.Keys("domain")))
	}
	if err := ExportPEFT(u, "nope", dir, PEFTConfig{}); err == nil {
		t.Error("exporting a missing group succeeded")
	}
	u.Set("fine", "x.lora_A.weight", NewTensor(3, 2))
	u.Set("fine", "x.lora_B.weight", NewTensor(2, 3))
	if err := ExportPEFT(u, "fine", t.TempDir(), PEFTConfig{}); err == nil || !strings.Contains(err.Error(), "ranks [2 3]") {
		t.Errorf("mixed ranks without rank_pattern: %v", err)
	}
}

func TestReadPEFTErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := ReadPEFT(dir); err == nil || !strings.Contains(err.Error(), PEFTModelFile) {
		t.Errorf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "adapter_model.bin"), []byte("pickle"), 0o644)
	if _, _, err := ReadPEFT(dir); err == nil || !strings.Contains(err.Error(), "safe_serialization") {
		t.Errorf("pickle only: %v", err)
	}
	model := rawFile(`{"m.lora_A.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"m.lora_B.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[4,8]}}`, f32Bytes(1, 2))
	os.WriteFile(filepath.Join(dir, PEFTModelFile), model, 0o644)
	u, cfg, err := ReadPEFT(dir)
	if err != nil || cfg != nil || u.Get(PlainGroup, "m.lora_A.weight") == nil {
		t.Fatalf("adapter without config: %v %v", cfg, err)
	}
	for _, c := range []struct{ config, part string }{
		{`{"peft_type":"IA3"}`, "peft_type"},
		{`{"peft_type":"LORA","r":4}`, `tensor "m.lora_A.weight": rank 1`},
		{`{"r":0}`, "config r"},
		{`{"lora_alpha":-1}`, "lora_alpha"},
		{`{"target_modules":7}`, "target_modules"},
		{`{"r":`, "invalid JSON"},
	} {
		os.WriteFile(filepath.Join(dir, PEFTConfigFile), []byte(c.config), 0o644)
		_, _, err := ReadPEFT(dir)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.part) {
			t.Errorf("config %s: %v", c.config, err)
		}
	}
	os.WriteFile(filepath.Join(dir, PEFTConfigFile), []byte(`{"peft_type":"LORA","r":1,"lora_alpha":16,"target_modules":".*attn.*"}`), 0o644)
	u, cfg, err = ReadPEFT(dir)
	if err != nil || cfg.TargetModulesRegex != ".*attn.*" || u.Meta.LoraAlpha != 16 {
		t.Fatalf("regex target_modules: %+v %v", cfg, err)
	}
}
