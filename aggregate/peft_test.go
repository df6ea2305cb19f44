package aggregate

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// realPEFT finds shared/cases/peft-gpt2-lora next to the repository root
// (or one directory further up, for a worktree checkout).
func realPEFT(t *testing.T) *adapter.Update {
	t.Helper()
	for _, dir := range []string{"../../shared/cases/peft-gpt2-lora", "../../../shared/cases/peft-gpt2-lora"} {
		if _, err := os.Stat(filepath.Join(dir, adapter.PEFTModelFile)); err == nil {
			u, _, err := adapter.ReadPEFT(dir)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
	}
	t.Skip("real PEFT adapter not present")
	return nil
}

func modules(u *adapter.Update, group string) []string {
	var out []string
	for _, k := range u.Keys(group) {
		if m, f, ok := adapter.SplitLoRAKey(k); ok && f == "A" {
			out = append(out, m)
		}
	}
	return out
}

// The real GPT-2 adapter (r = 8, α = 8, fan_in_fan_out) aggregated with
// itself gives back the same ΔW, module by module, in every strategy and
// LoRA mode; ΔW comes out in Conv1D's in×out orientation.
func TestRealPEFTSelfAggregation(t *testing.T) {
	u := realPEFT(t)
	mods := modules(u, "all")
	if len(mods) != 12 || !u.Meta.FanInFanOut {
		t.Fatalf("%d modules, fan_in_fan_out %v", len(mods), u.Meta.FanInFanOut)
	}
	want := map[string]*adapter.Tensor{}
	for _, m := range mods {
		d, err := DeltaWeight(u, "all", m)
		if err != nil {
			t.Fatal(err)
		}
		if d.Shape[0] != 768 || d.Shape[1] != 2304 {
			t.Fatalf("%s: ΔW shape %v, want Conv1D's [768 2304]", m, d.Shape)
		}
		want[m] = d
	}
	modes := []LoRAMode{Factor, Exact, SVD}
	if testing.Short() {
		modes = []LoRAMode{Factor, Exact}
	}
	for _, s := range Strategies() {
		for _, mode := range modes {
			copies := []*adapter.Update{u, u.Clone()}
			if strings.Contains(s, "krum") {
				copies = append(copies, u.Clone()) // krum needs n > 2f+2 = 2
			}
			got, err := Aggregate(s, copies, Options{LoRAMode: mode})
			if err != nil {
				t.Fatalf("%s %s: %v", s, mode, err)
			}
			if !got.Meta.FanInFanOut || got.Meta.Kind != adapter.KindAdapter {
				t.Fatalf("%s %s: metadata %+v", s, mode, got.Meta)
			}
			if mode != Exact && got.Meta.Rank != 8 {
				t.Errorf("%s %s: rank %d, want 8", s, mode, got.Meta.Rank)
			}
			for _, m := range mods {
				d, err := DeltaWeight(got, "all", m)
				if err != nil {
					t.Fatal(err)
				}
				var diff, norm float64
				for i, v := range d.Data {
					w := float64(want[m].Data[i])
					diff += (float64(v) - w) * (float64(v) - w)
					norm += w * w
				}
				if e := math.Sqrt(diff / norm); e > 1e-5 || !d.SameShape(want[m]) {
					t.Fatalf("%s %s %s: relative error %.3g, shape %v", s, mode, m, e, d.Shape)
				}
			}
			head := "base_model.model.score.weight"
			for i, v := range got.Get("all", head).Data {
				if w := u.Get("all", head).Data[i]; math.Abs(float64(v-w)) > 1e-6*max(1, math.Abs(float64(w))) {
					t.Fatalf("%s %s: %s[%d] = %v, want %v", s, mode, head, i, v, w)
				}
			}
		}
	}
}

func TestWithBase(t *testing.T) {
	base := vecUpdate("base", 1, 1, 2, 3)
	base.Meta.Kind, base.Meta.LoraAlpha, base.Meta.FanInFanOut = adapter.KindAdapter, 16, true
	base.Groups = map[string]map[string]*adapter.Tensor{"all": base.Groups["g"]}
	d := vecUpdate("n1", 5, 0.5, -2, 1)
	full, err := WithBase(d, base)
	if err != nil {
		t.Fatal(err)
	}
	if got := full.Get("g", "w").Data; got[0] != 1.5 || got[1] != 0 || got[2] != 4 || full.Meta.Kind != adapter.KindAdapter ||
		full.Meta.LoraAlpha != 16 || !full.Meta.FanInFanOut || full.Meta.Samples != 5 {
		t.Fatalf("with base: %v %+v", got, full.Meta)
	}
	d.Set("g", "w", adapter.NewTensor(4))
	if _, err := WithBase(d, base); !contains(err, ErrMismatch, `"n1"`, "[4]", "[3]") {
		t.Fatalf("shape mismatch: %v", err)
	}
}
