package adapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dafnet/daf/internal/atomicfile"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File names of a PEFT adapter directory.
const (
	PEFTModelFile  = "adapter_model.safetensors"
	PEFTConfigFile = "adapter_config.json"
)

// MaxPEFTConfigBytes bounds adapter_config.json, which PEFT writes in well
// under 4 KiB.
const MaxPEFTConfigBytes = 1 << 20

// PEFTConfig is the part of PEFT's adapter_config.json that DAF uses, plus
// every other field kept verbatim in Extra so an export writes back what
// was read.
type PEFTConfig struct {
	PEFTType      string   `json:"peft_type"`                // "LORA"; other PEFT methods are refused
	R             int      `json:"r"`                        // default LoRA rank
	LoraAlpha     float64  `json:"lora_alpha"`               // scaling numerator: ΔW = (LoraAlpha/R)·B·A
	TargetModules []string `json:"target_modules,omitempty"` // module names LoRA was applied to
	// TargetModulesRegex holds target_modules when PEFT saved it as one
	// regular expression instead of a list.
	TargetModulesRegex string `json:"target_modules_regex,omitempty"`
	// FanInFanOut: the base layer stores weights transposed (GPT-2's
	// Conv1D), so ΔW = (α/r)·(B·A)ᵀ.
	FanInFanOut  bool                       `json:"fan_in_fan_out"`
	BaseModel    string                     `json:"base_model_name_or_path,omitempty"`
	TaskType     string                     `json:"task_type,omitempty"`     // e.g. CAUSAL_LM
	RankPattern  map[string]int             `json:"rank_pattern,omitempty"`  // per-module rank overrides
	AlphaPattern map[string]float64         `json:"alpha_pattern,omitempty"` // per-module alpha overrides
	Extra        map[string]json.RawMessage `json:"extra,omitempty"`
}

// typed config fields, which Extra never holds.
var peftTypedFields = map[string]bool{
	"peft_type": true, "r": true, "lora_alpha": true, "target_modules": true, "fan_in_fan_out": true,
	"base_model_name_or_path": true, "task_type": true, "rank_pattern": true, "alpha_pattern": true,
}

// parsePEFTConfig reads adapter_config.json, refusing non-LoRA adapters
// and values DAF cannot use.
func parsePEFTConfig(data []byte, file string) (*PEFTConfig, error) {
	if !json.Valid(data) {
		var probe any
		return nil, corrupt(file, "config", "invalid JSON: %v", json.Unmarshal(data, &probe))
	}
	if !isJSONObject(data) {
		return nil, corrupt(file, "config", "not a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, corrupt(file, "config", "invalid JSON: %v", err)
	}
	c := &PEFTConfig{Extra: map[string]json.RawMessage{}}
	field := func(key string, dst any) error {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return corrupt(file, "config "+key, "%v", err)
		}
		return nil
	}
	var tm json.RawMessage
	for _, f := range []struct {
		key string
		dst any
	}{
		{"peft_type", &c.PEFTType}, {"r", &c.R}, {"lora_alpha", &c.LoraAlpha}, {"target_modules", &tm},
		{"fan_in_fan_out", &c.FanInFanOut}, {"base_model_name_or_path", &c.BaseModel}, {"task_type", &c.TaskType},
		{"rank_pattern", &c.RankPattern}, {"alpha_pattern", &c.AlphaPattern},
	} {
		if err := field(f.key, f.dst); err != nil {
			return nil, err
		}
	}
	if len(tm) > 0 {
		if tm[0] == '"' {
			if err := json.Unmarshal(tm, &c.TargetModulesRegex); err != nil {
				return nil, corrupt(file, "config target_modules", "%v", err)
			}
		} else if err := json.Unmarshal(tm, &c.TargetModules); err != nil {
			return nil, corrupt(file, "config target_modules", "want a list of module names or a regular expression: %v", err)
		}
	}
	for k, v := range raw {
		if !peftTypedFields[k] {
			c.Extra[k] = v
		}
	}
	if c.PEFTType != "" && c.PEFTType != "LORA" {
		return nil, corrupt(file, "config peft_type", "%q adapters are not supported (want LORA)", c.PEFTType)
	}
	if _, ok := raw["r"]; ok && c.R < 1 {
		return nil, corrupt(file, "config r", "%d: want >= 1", c.R)
	}
	// PEFT scales by lora_alpha/r, so 0 switches the adapter off; in our
	// metadata 0 means "alpha = r", so a stated 0 cannot be carried over.
	if v, ok := raw["lora_alpha"]; ok && string(v) != "null" && !(c.LoraAlpha > 0 && !math.IsInf(c.LoraAlpha, 0)) {
		return nil, corrupt(file, "config lora_alpha", "%v: want a finite number > 0", c.LoraAlpha)
	}
	for m, r := range c.RankPattern {
		if r < 1 {
			return nil, corrupt(file, "config rank_pattern", "module %s: rank %d, want >= 1", printable(m), r)
		}
	}
	return c, nil
}

// ReadPEFT reads a plain PEFT LoRA adapter: a directory holding
// adapter_model.safetensors and optionally adapter_config.json, or the
// safetensors file alone (a sibling adapter_config.json is used when the
// file has PEFT's name). Its tensors form the group "all" with kind
// adapter; r, lora_alpha and fan_in_fan_out from the config go into the
// metadata. The config is nil when there is none. A directory's name is
// the default daf.node.
func ReadPEFT(path string) (*Update, *PEFTConfig, error) {
	u, _, cfg, err := readPEFT(path, false)
	return u, cfg, err
}

// readPEFT is ReadPEFT that maps the model file when mapped is set (see
// ReadFileMapped); the Mapping is nil otherwise.
func readPEFT(path string, mapped bool) (u *Update, m *Mapping, cfg *PEFTConfig, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, nil, err
	}
	modelPath, configPath, node := path, "", ""
	if st.IsDir() {
		modelPath = filepath.Join(path, PEFTModelFile)
		configPath = filepath.Join(path, PEFTConfigFile)
		node = dirName(path)
		if _, err := os.Stat(modelPath); errors.Is(err, os.ErrNotExist) {
			if _, binErr := os.Stat(filepath.Join(path, "adapter_model.bin")); binErr == nil {
				return nil, nil, nil, fmt.Errorf("%s: only adapter_model.bin (pickle) found; save the adapter with safe_serialization=True", path)
			}
			return nil, nil, nil, fmt.Errorf("%s: no %s in the directory", path, PEFTModelFile)
		}
	} else if filepath.Base(path) == PEFTModelFile {
		configPath = filepath.Join(filepath.Dir(path), PEFTConfigFile)
		node = dirName(filepath.Dir(path))
	}
	if mapped {
		if m, err = openMapping(modelPath); err != nil {
			return nil, nil, nil, err
		}
		defer func() {
			if err != nil {
				m.Close()
				u, m = nil, nil
			}
		}()
		u, err = m.decode()
	} else {
		var data []byte
		if data, err = readRegular(modelPath); err != nil {
			return nil, nil, nil, err
		}
		u, err = Unmarshal(data, modelPath)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if node != "" && u.Meta.Node == NodeFromName(modelPath) {
		u.Meta.Node = node
	}
	if configPath != "" {
		cdata, err := readRegularMax(configPath, MaxPEFTConfigBytes)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, nil, nil, err
		default:
			if cfg, err = parsePEFTConfig(cdata, configPath); err != nil {
				return nil, nil, nil, err
			}
			if err := applyPEFTConfig(u, cfg, modelPath); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	return u, m, cfg, nil
}

// dirName is a directory's own name, also for "." or "./" (read from
// inside the adapter's directory), which filepath.Base leaves as ".".
func dirName(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Base(filepath.Clean(dir))
}

// applyPEFTConfig copies rank, alpha and layout into the metadata and holds
// the tensors to the config's rank.
func applyPEFTConfig(u *Update, cfg *PEFTConfig, file string) error {
	u.Meta.Rank = cfg.R
	u.Meta.LoraAlpha = cfg.LoraAlpha
	u.Meta.FanInFanOut = cfg.FanInFanOut
	if cfg.R == 0 {
		return nil
	}
	if len(cfg.RankPattern) > 0 {
		// Per-module ranks: the shapes are the truth, and the update has
		// one rank only if every factor has r.
		if _, _, _, ok := rankConflict(u); !ok {
			u.Meta.Rank = 0
		}
		return nil
	}
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			_, factor, ok := SplitLoRAKey(k)
			if !ok {
				continue
			}
			t := u.Groups[g][k]
			r := t.Shape[0]
			if factor == "B" {
				r = t.Shape[1]
			}
			if r != cfg.R {
				return corrupt(file, tensorPart(k), "rank %d, but %s says r = %d", r, PEFTConfigFile, cfg.R)
			}
		}
	}
	return nil
}

// ExportPEFT writes one group of an update as a PEFT adapter directory that
// PEFT's loader accepts: adapter_model.safetensors with the group's tensors
// under their PEFT keys (F32, metadata format=pt), and adapter_config.json
// with peft_type LORA, r, lora_alpha, target_modules and fan_in_fan_out.
// Fields left zero in cfg are filled from the update: r from the metadata
// or the factors' shapes, lora_alpha from the metadata or r,
// target_modules from the module names; fan_in_fan_out is set if either
// cfg or the metadata says so. cfg.Extra is written back unchanged. Both
// files are written atomically; dir is created if needed.
func ExportPEFT(u *Update, group string, dir string, cfg PEFTConfig) error {
	if u == nil || u.Groups[group] == nil {
		return fmt.Errorf("export %s: update has no group %q", dir, group)
	}
	var ts []namedTensor
	for _, k := range u.Keys(group) {
		if err := checkTensor(u.Groups[group][k], k); err != nil {
			return fmt.Errorf("export %s: tensor %q: %w", dir, k, err)
		}
		ts = append(ts, namedTensor{k, u.Groups[group][k]})
	}
	if err := fillPEFTConfig(&cfg, u, group); err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	model, err := encodeFile(ts, map[string]string{"format": "pt"})
	if err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	config, err := encodePEFTConfig(cfg)
	if err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	// Hold the config to what ReadPEFT accepts, so an export always reads
	// back (a negative lora_alpha or rank would be written otherwise).
	if _, err := parsePEFTConfig(config, PEFTConfigFile); err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteFunc(filepath.Join(dir, PEFTModelFile), 0o644, model.writeTo); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, PEFTConfigFile), config, 0o644)
}

func fillPEFTConfig(cfg *PEFTConfig, u *Update, group string) error {
	if cfg.PEFTType == "" {
		cfg.PEFTType = "LORA"
	}
	if cfg.PEFTType != "LORA" {
		return fmt.Errorf("peft_type %q: only LORA adapters can be exported", cfg.PEFTType)
	}
	ranks := map[int]bool{}
	modules := map[string]bool{}
	for _, k := range u.Keys(group) {
		module, factor, ok := SplitLoRAKey(k)
		if !ok {
			continue
		}
		t := u.Groups[group][k]
		if len(t.Shape) < 2 {
			return fmt.Errorf("tensor %q: LoRA factor has shape %v", k, t.Shape)
		}
		if factor == "A" {
			ranks[t.Shape[0]] = true
		} else {
			ranks[t.Shape[1]] = true
		}
		modules[module[strings.LastIndexByte(module, '.')+1:]] = true
	}
	if cfg.R == 0 {
		cfg.R = u.Meta.Rank
	}
	if cfg.R == 0 {
		if len(ranks) != 1 || len(cfg.RankPattern) > 0 {
			return fmt.Errorf("group %s: cannot derive r from factor ranks %v; set PEFTConfig.R and RankPattern", group, sortedInts(ranks))
		}
		for r := range ranks {
			cfg.R = r
		}
	}
	if len(cfg.RankPattern) == 0 && len(ranks) > 0 && (len(ranks) != 1 || !ranks[cfg.R]) {
		return fmt.Errorf("group %s: factors have ranks %v but r = %d and no rank_pattern", group, sortedInts(ranks), cfg.R)
	}
	if cfg.LoraAlpha == 0 {
		cfg.LoraAlpha = u.Meta.LoraAlpha
	}
	if cfg.LoraAlpha == 0 {
		cfg.LoraAlpha = float64(cfg.R)
	}
	if len(cfg.TargetModules) == 0 && cfg.TargetModulesRegex == "" {
		for m := range modules {
			cfg.TargetModules = append(cfg.TargetModules, m)
		}
		sort.Strings(cfg.TargetModules)
	}
	cfg.FanInFanOut = cfg.FanInFanOut || u.Meta.FanInFanOut
	return nil
}

func sortedInts(set map[int]bool) []int {
	out := make([]int, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

// encodePEFTConfig renders adapter_config.json: Extra first, then the typed
// fields over it, keys sorted and indented as PEFT writes them.
func encodePEFTConfig(cfg PEFTConfig) ([]byte, error) {
	out := map[string]any{}
	for k, v := range cfg.Extra {
		out[k] = v
	}
	out["peft_type"] = cfg.PEFTType
	out["r"] = cfg.R
	out["lora_alpha"] = cfg.LoraAlpha
	if cfg.TargetModulesRegex != "" {
		out["target_modules"] = cfg.TargetModulesRegex
	} else {
		out["target_modules"] = cfg.TargetModules
	}
	out["fan_in_fan_out"] = cfg.FanInFanOut
	if cfg.BaseModel != "" {
		out["base_model_name_or_path"] = cfg.BaseModel
	}
	if cfg.TaskType != "" {
		out["task_type"] = cfg.TaskType
	}
	rp := cfg.RankPattern
	if rp == nil {
		rp = map[string]int{}
	}
	ap := cfg.AlphaPattern
	if ap == nil {
		ap = map[string]float64{}
	}
	out["rank_pattern"], out["alpha_pattern"] = rp, ap
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
