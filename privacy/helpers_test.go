package privacy

import (
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// testUpdate builds an update with the given groups, each holding one
// tensor of the given values.
func testUpdate(groups map[string][]float32) *adapter.Update {
	u := adapter.New()
	for g, vals := range groups {
		t := adapter.NewTensor(len(vals))
		copy(t.Data, vals)
		u.Set(g, "layers.0.q_proj.lora_A.weight", t)
	}
	return u
}

// randomUpdate builds a three-group update with n values per group drawn
// from N(0, scale²).
func randomUpdate(rng *rand.Rand, n int, scale float64) *adapter.Update {
	u := adapter.New()
	for _, g := range []string{"coarse", "domain", "fine"} {
		a := adapter.NewTensor(n/2+1, 2)
		b := adapter.NewTensor(3, n/3+1)
		for _, t := range []*adapter.Tensor{a, b} {
			for i := range t.Data {
				t.Data[i] = float32(rng.NormFloat64() * scale)
			}
		}
		u.Set(g, "m.lora_A.weight", a)
		u.Set(g, "m.lora_B.weight", b)
	}
	return u
}
