package attack

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// SybilClones returns n copies of u, each plus Gaussian noise whose norm is
// perturb·‖u‖ (so the cosine of a clone with u is about 1/√(1+perturb²)),
// under the identities "<u's node>-sybil-<i>", i = 0…n−1.
func SybilClones(u *adapter.Update, n int, perturb float64, rng *rand.Rand) []*adapter.Update {
	if n <= 0 {
		return nil
	}
	norm := u.L2()
	size := u.NumParams()
	out := make([]*adapter.Update, n)
	for c := range out {
		clone := u.Clone()
		clone.Meta.Node = fmt.Sprintf("%s-sybil-%d", u.Meta.Node, c)
		noise := make([]float64, size)
		var sq float64
		for i := range noise {
			noise[i] = rng.NormFloat64()
			sq += noise[i] * noise[i]
		}
		scale := 0.0
		if sq > 0 {
			scale = perturb * norm / math.Sqrt(sq)
		}
		i := 0
		forEachTensor(clone, func(t *adapter.Tensor) {
			for j, v := range t.Data {
				t.Data[j] = float32(float64(v) + scale*noise[i])
				i++
			}
		})
		out[c] = clone
	}
	return out
}
