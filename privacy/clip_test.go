package privacy

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dafnet/daf/adapter"
	"pgregory.net/rapid"
)

const key = "layers.0.q_proj.lora_A.weight"

func TestClipJointAcrossGroups(t *testing.T) {
	// Groups of norm 3 and 4: joint norm 5. Clipping each group to 1 on
	// its own would release norm √2; joint clipping scales both by 1/5.
	u := testUpdate(map[string][]float32{"coarse": {3, 0}, "fine": {0, -4}})
	f := Clip(u, 1)
	if math.Abs(f-0.2) > 1e-6 {
		t.Errorf("factor %v, want 0.2", f)
	}
	if n := u.L2(); n > 1 || n < 1-2e-6 {
		t.Errorf("clipped norm %v, want just under 1", n)
	}
	c, fi := u.Get("coarse", key).Data, u.Get("fine", key).Data
	if math.Abs(float64(c[0])-0.6) > 1e-6 || c[1] != 0 || fi[0] != 0 || math.Abs(float64(fi[1])+0.8) > 1e-6 {
		t.Errorf("direction not kept: coarse %v fine %v", c, fi)
	}
}

func TestClipLeavesSmallAndZeroUpdates(t *testing.T) {
	zero := testUpdate(map[string][]float32{"coarse": {0, 0}, "fine": {0}})
	if f := Clip(zero, 1); f != 1 || zero.L2() != 0 {
		t.Errorf("zero update: factor %v norm %v", f, zero.L2())
	}
	small := testUpdate(map[string][]float32{"coarse": {0.3, 0.4}})
	if f := Clip(small, 1); f != 1 || small.Get("coarse", key).Data[0] != 0.3 {
		t.Errorf("update inside the ball changed: factor %v", f)
	}
	empty := adapter.New()
	if f := Clip(empty, 1); f != 1 {
		t.Errorf("empty update: factor %v", f)
	}
	for _, b := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		u := testUpdate(map[string][]float32{"coarse": {30, 40}})
		if f := Clip(u, b); f != 1 || u.Get("coarse", key).Data[0] != 30 {
			t.Errorf("bound %v: factor %v, update changed", b, f)
		}
	}
}

// After clipping the norm never exceeds the bound, whatever the scale of
// the values (float32 rounding included), and each value is the original
// times the reported factor, to float32 precision.
func TestClipProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Uint64().Draw(t, "seed")
		scale := math.Pow(10, rapid.Float64Range(-8, 8).Draw(t, "log10 scale"))
		bound := math.Pow(10, rapid.Float64Range(-6, 6).Draw(t, "log10 bound"))
		n := rapid.IntRange(1, 400).Draw(t, "n")
		u := randomUpdate(rand.New(rand.NewPCG(seed, 1)), n, scale)
		orig := u.Clone()
		norm := orig.L2()
		f := Clip(u, bound)
		if got := u.L2(); got > bound {
			t.Fatalf("norm %v after clipping to %v (factor %v)", got, bound, f)
		}
		if norm <= bound {
			if f != 1 {
				t.Fatalf("norm %v ≤ bound %v but factor %v", norm, bound, f)
			}
			return
		}
		if want := bound / norm; math.Abs(f-want) > 2e-6*want {
			t.Fatalf("factor %v, want %v", f, want)
		}
		for _, g := range orig.GroupNames() {
			for _, k := range orig.Keys(g) {
				for i, v := range orig.Get(g, k).Data {
					want := float64(v) * f
					got := float64(u.Get(g, k).Data[i])
					if math.Abs(got-want) > 3*math.Abs(want)*0x1p-24 {
						t.Fatalf("%s/%s[%d] = %v, want %v", g, k, i, got, want)
					}
				}
			}
		}
	})
}
