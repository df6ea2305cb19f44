package defense

import (
	"math"
	"slices"
	"sort"

	"github.com/dafnet/daf/adapter"
)

// DetectSybil is the seed's detect_sybil: updates are linked when their
// cosine similarity is above cfg.SybilSimilarity, linked updates form
// clusters (connected components, i.e. single linkage), and in every
// cluster of at least cfg.SybilMinCluster distinct nodes all nodes but one
// are flagged. The one kept is the smallest node id, so every node of the
// federation flags the same ids whatever order the updates arrived in.
// The result is sorted.
//
// Cosines are exact, over the tensors two updates share by group, key and
// shape; norms are over each whole update. Updates that are nil, have no
// source, hold non-finite values or are all zero have no direction and are
// never linked. DetectSybil runs whether or not cfg.Enabled is set: the
// caller decides whether to use it (the federation's byzantine_detection).
// A SybilSimilarity or SybilMinCluster outside the range Config.Validate
// accepts (a zero Config, say) is replaced by DefaultConfig's value: a
// similarity of 0 would link every pair of honest updates.
func DetectSybil(updates []*adapter.Update, cfg Config) []string {
	in := make([]SybilInput, 0, len(updates))
	for _, u := range updates {
		if u != nil {
			in = append(in, SybilInput{Node: u.Meta.Node, Update: u})
		}
	}
	flagged, _ := DetectSybilFrom(in, cfg) // no base, so no shape to disagree with
	return flagged
}

// SybilInput is one update for DetectSybilFrom: the node it counts for, and
// the model its delta is taken from (Base nil: the update is taken as it
// is).
type SybilInput struct {
	Node   string
	Update *adapter.Update
	Base   *adapter.Update
}

// DetectSybilFrom is DetectSybil over each input's delta from its Base,
// Update − Base tensor by tensor (a tensor the base lacks counts as it
// is), computed on the fly instead of copied: a node judges the adapters
// of a round by what each changes in its own model. The result is exactly
// DetectSybil's over the materialised deltas. A tensor whose shape differs
// from its base's is an error wrapping ErrShapeMismatch.
//
// Pairs are compared exactly, but most are settled long before their last
// value: the dot product is summed block by block in the same order as a
// plain loop, and after each block Cauchy–Schwarz bounds what the blocks
// still to come can add, by the product of the two remaining norms. Once
// the sum so far plus that bound cannot reach the threshold the pair is
// not linked. Two unrelated updates of a million values are settled after
// about 1 % of them (the bound falls with the energy left, the threshold is
// 0.99 of the total); linked pairs, rare by nature, are summed in full.
func DetectSybilFrom(in []SybilInput, cfg Config) ([]string, error) {
	def := DefaultConfig()
	if !finite(cfg.SybilSimilarity) || cfg.SybilSimilarity <= 0 || cfg.SybilSimilarity > 1 {
		cfg.SybilSimilarity = def.SybilSimilarity
	}
	if cfg.SybilMinCluster < 2 {
		cfg.SybilMinCluster = def.SybilMinCluster
	}
	if len(in) == 0 {
		return nil, nil
	}
	var vs []flatUpdate
	for _, x := range in {
		if x.Update == nil || x.Node == "" {
			continue
		}
		f, err := flatten(x.Node, x.Update, x.Base)
		if err != nil {
			return nil, err
		}
		if f.finite && f.norm > 0 {
			vs = append(vs, f)
		}
	}
	parent := make([]int, len(vs))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if find(i) == find(j) {
				continue
			}
			if linked(vs[i], vs[j], cfg.SybilSimilarity) {
				parent[find(i)] = find(j)
			}
		}
	}
	clusters := map[int]map[string]bool{}
	for i, v := range vs {
		r := find(i)
		if clusters[r] == nil {
			clusters[r] = map[string]bool{}
		}
		clusters[r][v.node] = true
	}
	var flagged []string
	for _, members := range clusters {
		if len(members) < cfg.SybilMinCluster {
			continue
		}
		ids := sortedKeys(members)
		flagged = append(flagged, ids[1:]...)
	}
	sort.Strings(flagged)
	return slices.Compact(flagged), nil
}

// sybilBlock is how many values a pair sums between two looks at the
// bound: small against a tensor, large against the cost of a square root.
const sybilBlock = 4096

type flatTensor struct {
	name  string
	shape []int
	data  []float32
	base  []float32 // subtracted from data; nil: none
	// tail[k] is the sum of squares of the values from block k to the end
	// (tail[0] the whole tensor's, the last entry 0).
	tail []float64
}

type flatUpdate struct {
	node    string
	tensors []flatTensor // sorted by name
	norm    float64
	finite  bool
}

func flatten(node string, u, base *adapter.Update) (flatUpdate, error) {
	f := flatUpdate{node: node, finite: true}
	var sq float64
	var bad uint32
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			t := u.Groups[g][k]
			b, err := deltaBase(base, node, g, k, t)
			if err != nil {
				return flatUpdate{}, err
			}
			ft := flatTensor{name: g + "/" + k, shape: t.Shape, data: t.Data, base: b}
			blocks := (len(t.Data) + sybilBlock - 1) / sybilBlock
			ft.tail = make([]float64, blocks+1)
			for blk := blocks - 1; blk >= 0; blk-- {
				lo, hi := blk*sybilBlock, min(len(t.Data), (blk+1)*sybilBlock)
				var bb []float32
				if b != nil {
					bb = b[lo:hi]
				}
				s, nf := sumSquares(t.Data[lo:hi], bb)
				bad |= nf
				ft.tail[blk] = ft.tail[blk+1] + s
			}
			sq += ft.tail[0]
			f.tensors = append(f.tensors, ft)
		}
	}
	sort.Slice(f.tensors, func(i, j int) bool { return f.tensors[i].name < f.tensors[j].name })
	f.finite = bad&nonFiniteFlag == 0
	f.norm = math.Sqrt(sq)
	return f, nil
}

// value is the i-th value of the tensor's delta.
func (t *flatTensor) value(i int) float32 {
	if t.base == nil {
		return t.data[i]
	}
	return t.data[i] - t.base[i]
}

// sharedPairs are the tensors two updates both hold, by name and shape:
// the ones a cosine sums over.
func sharedPairs(a, b flatUpdate) [][2]*flatTensor {
	var out [][2]*flatTensor
	i, j := 0, 0
	for i < len(a.tensors) && j < len(b.tensors) {
		ta, tb := &a.tensors[i], &b.tensors[j]
		switch {
		case ta.name < tb.name:
			i++
		case ta.name > tb.name:
			j++
		default:
			if slices.Equal(ta.shape, tb.shape) && len(ta.data) == len(tb.data) {
				out = append(out, [2]*flatTensor{ta, tb})
			}
			i++
			j++
		}
	}
	return out
}

// boundSlack widens the Cauchy–Schwarz bound by far more than the rounding
// of a million-term float64 sum, so a pair is settled early only when
// summing it in full could not have linked it.
const boundSlack = 1e-6

// linked reports whether the cosine of a and b (over their shared tensors,
// divided by the whole updates' norms) is above threshold.
func linked(a, b flatUpdate, threshold float64) bool {
	pairs := sharedPairs(a, b)
	// after[p]: energy of the shared tensors after pair p, in a and in b.
	afterA, afterB := make([]float64, len(pairs)+1), make([]float64, len(pairs)+1)
	for p := len(pairs) - 1; p >= 0; p-- {
		afterA[p] = afterA[p+1] + pairs[p][0].tail[0]
		afterB[p] = afterB[p+1] + pairs[p][1].tail[0]
	}
	denom := a.norm * b.norm
	need := threshold*denom - boundSlack*denom
	var s float64
	for p, pr := range pairs {
		ta, tb := pr[0], pr[1]
		n := len(ta.data)
		for blk := 0; blk*sybilBlock < n; blk++ {
			lo, hi := blk*sybilBlock, min(n, (blk+1)*sybilBlock)
			s = dotRange(ta, tb, lo, hi, s)
			rest := math.Sqrt((afterA[p+1] + ta.tail[blk+1]) * (afterB[p+1] + tb.tail[blk+1]))
			if s+rest < need {
				return false
			}
		}
	}
	// A cosine cannot exceed 1; rounding can push identical updates' to
	// 1+ε, which must not link them under a threshold of exactly 1.
	return min(s/denom, 1) > threshold
}

// dotRange adds the products of values lo..hi-1 to s, one at a time in
// index order: the order of the plain cosine loop, so a pair summed in full
// gets the same float64 result.
func dotRange(ta, tb *flatTensor, lo, hi int, s float64) float64 {
	switch {
	case ta.base == nil && tb.base == nil:
		da, db := ta.data[lo:hi], tb.data[lo:hi]
		for k := range da {
			s += float64(da[k]) * float64(db[k])
		}
	default:
		for k := lo; k < hi; k++ {
			s += float64(ta.value(k)) * float64(tb.value(k))
		}
	}
	return s
}
