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
	// The factor comparison sees a 1.5× ΔW as a relative error of 0.5.
	scaled := u.Clone()
	for i := range scaled.Get("all", mods[0]+".lora_B.weight").Data {
		scaled.Get("all", mods[0]+".lora_B.weight").Data[i] *= 1.5
	}
	if e := productRelErr(t, scaled, u, "all", mods[0]); math.Abs(e-0.5) > 1e-6 {
		t.Fatalf("ΔW scaled by 1.5: relative error %v, want 0.5", e)
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
				// The dense ΔW (768×2304 per module) is formed for one
				// strategy; the others are compared through their factors,
				// which is the same Frobenius error without the dense work.
				if s != "weighted_average" {
					if e := productRelErr(t, got, u, "all", m); e > 1e-5 {
						t.Fatalf("%s %s %s: relative error %.3g", s, mode, m, e)
					}
					continue
				}
				d, err := DeltaWeight(got, "all", m)
				if err != nil {
					t.Fatal(err)
				}
				var diff, norm float64
				wantData := want[m].Data
				for i, v := range d.Data {
					w := float64(wantData[i])
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

// productRelErr is ‖ΔW_got − ΔW_want‖_F / ‖ΔW_want‖_F of one module,
// from the stacked factors B_s = [s_g·B_g | −s_w·B_w], A_s = [A_g; A_w]:
// ‖B_s·A_s‖²_F = Σ_pq (B_sᵀB_s)_pq (A_s·A_sᵀ)_pq, in float64. The factors
// must also have the want's outer dimensions (in for A, out for B).
func productRelErr(t *testing.T, got, want *adapter.Update, group, module string) float64 {
	t.Helper()
	type factor struct {
		a, b  *adapter.Tensor
		scale float64
	}
	get := func(u *adapter.Update) factor {
		a, b := u.Get(group, module+".lora_A.weight"), u.Get(group, module+".lora_B.weight")
		if a == nil || b == nil || len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[0] != b.Shape[1] {
			t.Fatalf("%s %s: no lora_A/lora_B pair", group, module)
		}
		return factor{a, b, effectiveAlpha(u, a.Shape[0]) / float64(a.Shape[0])}
	}
	g, w := get(got), get(want)
	if g.a.Shape[1] != w.a.Shape[1] || g.b.Shape[0] != w.b.Shape[0] {
		t.Fatalf("%s %s: factors %v·%v, want outer dimensions of %v·%v", group, module, g.b.Shape, g.a.Shape, w.b.Shape, w.a.Shape)
	}
	fs := []factor{g, {w.a, w.b, -w.scale}}
	// cols[i] lists the rank-1 terms (factor, row of A / column of B).
	type term struct{ f, p int }
	var terms []term
	for fi, f := range fs {
		for p := 0; p < f.a.Shape[0]; p++ {
			terms = append(terms, term{fi, p})
		}
	}
	in, out := w.a.Shape[1], w.b.Shape[0]
	bCol := func(x term, row int) float64 {
		f := fs[x.f]
		return f.scale * float64(f.b.Data[row*f.a.Shape[0]+x.p])
	}
	aRow := func(x term) []float32 { f := fs[x.f]; return f.a.Data[x.p*in : (x.p+1)*in] }
	var diff, norm float64
	for i, x := range terms {
		for j, y := range terms {
			if j < i {
				continue
			}
			var bb, aa float64
			for row := 0; row < out; row++ {
				bb += bCol(x, row) * bCol(y, row)
			}
			ax, ay := aRow(x), aRow(y)
			for c := range ax {
				aa += float64(ax[c]) * float64(ay[c])
			}
			v := bb * aa
			if i != j {
				v *= 2
			}
			diff += v
			if x.f == 1 && y.f == 1 {
				norm += v
			}
		}
	}
	return math.Sqrt(max(0, diff) / norm)
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
