package dlm

import (
	"fmt"
	"math"

	"github.com/dafnet/daf/adapter"
)

// Consensus says how far apart the nodes' banks are after a round: the mean
// over node pairs of the Euclidean distance between their banks, all groups
// jointly. Factor is measured on the LoRA factors as exchanged; Effective on
// the weight changes they make, (α/r)·B·A per module, which does not depend
// on how a change is factored and is 0 exactly when two nodes' models agree.
type Consensus struct {
	Factor    float64
	Effective float64
}

// ConsensusDistance compares every pair of banks. Every bank must hold the
// same groups and tensors (same names and shapes); fewer than two banks are
// at distance 0.
func ConsensusDistance(banks []*adapter.Update) (Consensus, error) {
	var out Consensus
	if len(banks) < 2 {
		return out, nil
	}
	ref := banks[0]
	for i, b := range banks {
		if b == nil {
			return out, fmt.Errorf("%w: banks of node %d are missing", ErrBanks, i)
		}
		if len(b.Groups) != len(ref.Groups) {
			return out, fmt.Errorf("%w: node %d has %d groups, node 0 has %d", ErrBanks, i, len(b.Groups), len(ref.Groups))
		}
		for _, g := range ref.GroupNames() {
			if len(b.Groups[g]) != len(ref.Groups[g]) {
				return out, fmt.Errorf("%w: node %d group %s has %d tensors, node 0 has %d", ErrBanks, i, g, len(b.Groups[g]), len(ref.Groups[g]))
			}
			for _, k := range ref.Keys(g) {
				if t := b.Get(g, k); t == nil || !t.SameShape(ref.Get(g, k)) {
					return out, fmt.Errorf("%w: node %d tensor %s/%s is missing or has another shape than node 0's", ErrBanks, i, g, k)
				}
			}
		}
	}
	effective := make([]map[string][]float64, len(banks))
	for i, b := range banks {
		effective[i] = effectiveDeltas(b)
	}
	pairs := 0
	for i := range banks {
		for j := i + 1; j < len(banks); j++ {
			var f, e float64
			for _, g := range ref.GroupNames() {
				for _, k := range ref.Keys(g) {
					a, b := banks[i].Get(g, k).Data, banks[j].Get(g, k).Data
					for x := range a {
						d := float64(a[x]) - float64(b[x])
						f += d * d
					}
				}
			}
			for key, di := range effective[i] {
				dj := effective[j][key]
				for x := range di {
					d := di[x] - dj[x]
					e += d * d
				}
			}
			out.Factor += math.Sqrt(f)
			out.Effective += math.Sqrt(e)
			pairs++
		}
	}
	out.Factor /= float64(pairs)
	out.Effective /= float64(pairs)
	return out, nil
}

// effectiveDeltas returns (α/r)·B·A in float64 for every LoRA module of
// every group, keyed "group/module".
func effectiveDeltas(u *adapter.Update) map[string][]float64 {
	rank := u.Meta.Rank
	out := map[string][]float64{}
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			module, factor, ok := adapter.SplitLoRAKey(k)
			if !ok || factor != "A" {
				continue
			}
			a := u.Get(g, k)
			b := u.Get(g, module+".lora_B.weight")
			if b == nil || len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[0] != b.Shape[1] {
				continue
			}
			r, in, outDim := a.Shape[0], a.Shape[1], b.Shape[0]
			if rank == 0 {
				rank = r
			}
			alpha := u.Meta.LoraAlpha
			if alpha == 0 {
				alpha = float64(rank)
			}
			s := alpha / float64(rank)
			d := make([]float64, outDim*in)
			for o := 0; o < outDim; o++ {
				for x := 0; x < r; x++ {
					bv := s * float64(b.Data[o*r+x])
					for i := 0; i < in; i++ {
						d[o*in+i] += bv * float64(a.Data[x*in+i])
					}
				}
			}
			out[g+"/"+module] = d
		}
	}
	return out
}
