package adapter

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnmarshal feeds arbitrary bytes to the reader: it must never panic,
// must refuse with ErrCorrupt or ErrNonFinite, and whatever it accepts must
// survive Marshal and Unmarshal unchanged.
func FuzzUnmarshal(f *testing.F) {
	valid, err := Marshal(sampleUpdate())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.quality":"{\"fine\":{\"ppl_after\":3}}"},"coarse/h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"domain/b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}`, u16Bytes(0x3c00, 0x0001, 0x8000, 0x7bff, 0x3f80, 0x0001)))
	f.Add(rawFile(`{"__metadata__":{"format":"pt"},"m.lora_A.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"m.lora_B.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]}}`, f32Bytes(1, 2, 3, 4)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := Unmarshal(data, "fuzz.safetensors")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNonFinite) {
				t.Fatalf("error wraps neither ErrCorrupt nor ErrNonFinite: %v", err)
			}
			return
		}
		out, err := Marshal(u)
		if err != nil {
			t.Fatalf("accepted update does not marshal: %v", err)
		}
		back, err := Unmarshal(out, "fuzz.safetensors")
		if err != nil {
			t.Fatalf("re-marshalled update does not read back: %v", err)
		}
		sameUpdate(t, back, u)
	})
}

// FuzzReadFileMapped feeds arbitrary files to the mapped reader: it must
// accept what Unmarshal accepts, with the same values, and refuse the rest
// with the same error.
func FuzzReadFileMapped(f *testing.F) {
	valid, err := Marshal(sampleUpdate())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(rawFile(`{"__metadata__":{"daf.format":"talora-update/1"},"coarse/h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"coarse/w":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}}`, append(u16Bytes(0x3c00), f32Bytes(1, 2)...)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32Bytes(float32(math.Inf(1)))))
	f.Add([]byte{})
	path := filepath.Join(f.TempDir(), "fuzz.safetensors")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want, wantErr := Unmarshal(data, path)
		got, m, err := ReadFileMapped(path)
		defer m.Close()
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("mapped: %v\ncopied: %v", err, wantErr)
		}
		if err == nil {
			sameUpdate(t, got, want)
		}
	})
}

// FuzzPEFTConfig feeds arbitrary bytes to the adapter_config.json reader:
// it must never panic, must refuse with ErrCorrupt, and whatever it
// accepts must be written back by encodePEFTConfig as a config that reads
// back the same.
func FuzzPEFTConfig(f *testing.F) {
	f.Add([]byte(`{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["q_proj","v_proj"],"fan_in_fan_out":true,"rank_pattern":{"x":4},"alpha_pattern":{"x":8},"bias":"none"}`))
	f.Add([]byte(`{"r":1,"target_modules":".*attn.*","task_type":"CAUSAL_LM","base_model_name_or_path":"gpt2"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"lora_alpha":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parsePEFTConfig(data, "fuzz.json")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// ExportPEFT fills these before encoding (fillPEFTConfig).
		if cfg.PEFTType == "" {
			cfg.PEFTType = "LORA"
		}
		if cfg.R == 0 {
			cfg.R = 1
		}
		if cfg.LoraAlpha == 0 {
			cfg.LoraAlpha = float64(cfg.R)
		}
		out, err := encodePEFTConfig(*cfg)
		if err != nil {
			t.Fatalf("accepted config does not encode: %v", err)
		}
		back, err := parsePEFTConfig(out, "fuzz.json")
		if err != nil {
			t.Fatalf("re-encoded config does not read back: %v\n%s", err, out)
		}
		if a, b := fmt.Sprintf("%+v", normPEFT(*back)), fmt.Sprintf("%+v", normPEFT(*cfg)); a != b {
			t.Fatalf("config changed:\n got %s\nwant %s", a, b)
		}
	})
}

// normPEFT blanks what encodePEFTConfig legitimately writes for an absent
// field (empty patterns and lists) and the verbatim Extra fields.
func normPEFT(c PEFTConfig) PEFTConfig {
	c.Extra = nil
	if len(c.RankPattern) == 0 {
		c.RankPattern = nil
	}
	if len(c.AlphaPattern) == 0 {
		c.AlphaPattern = nil
	}
	if len(c.TargetModules) == 0 {
		c.TargetModules = nil
	}
	return c
}
