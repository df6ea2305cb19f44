package aggregate

import (
	"fmt"

	"github.com/dafnet/daf/adapter"
)

// effectiveAlpha is an update's lora_alpha, which defaults to the rank.
func effectiveAlpha(u *adapter.Update, rank int) float64 {
	if u.Meta.LoraAlpha > 0 {
		return u.Meta.LoraAlpha
	}
	return float64(rank)
}

// elementInputs lays out the group's tensors as xs[key][member]. In factor
// mode a member whose lora_alpha differs from the first update's has its B
// factors rescaled (in a copy) so that every B is on the first update's
// scale α/r: averaging factors on different scales would weight the nodes
// by their α.
func elementInputs(keys []string, ms []member, first *adapter.Update) [][][]float32 {
	xs := make([][][]float32, len(keys))
	for k, key := range keys {
		xs[k] = make([][]float32, len(ms))
		_, factor, isLoRA := adapter.SplitLoRAKey(key)
		for i, m := range ms {
			t := m.tensors[key]
			xs[k][i] = t.Data
			if !isLoRA || factor != "B" || len(t.Shape) != 2 {
				continue
			}
			r := t.Shape[1]
			ratio := effectiveAlpha(m.u, r) / effectiveAlpha(first, r)
			if ratio == 1 {
				continue
			}
			scaled := make([]float32, len(t.Data))
			for e, v := range t.Data {
				scaled[e] = float32(float64(v) * ratio)
			}
			xs[k][i] = scaled
		}
	}
	return xs
}

// referenceInputs returns the reference's tensors of the group by key, or
// nil when the reference does not carry the group (then learned_attention
// attends to the coordinate mean). A reference that carries the group must
// match it key by key and shape by shape.
func referenceInputs(ref *adapter.Update, group string, keys []string, ms []member) ([][]float32, error) {
	if ref == nil || ref.Groups[group] == nil {
		return nil, nil
	}
	out := make([][]float32, len(keys))
	for k, key := range keys {
		t := ref.Groups[group][key]
		if t == nil {
			return nil, fmt.Errorf("%w: group %s: the learned_attention reference lacks tensor %s", ErrMismatch, group, key)
		}
		if want := ms[0].tensors[key]; !t.SameShape(want) {
			return nil, fmt.Errorf("%w: group %s tensor %s: the learned_attention reference has shape %v, node %q has %v",
				ErrMismatch, group, key, t.Shape, ms[0].node, want.Shape)
		}
		out[k] = t.Data
	}
	return out, nil
}

// aggregateElementwise runs a strategy on every tensor of a group as flat
// vectors (factor mode, or any update without LoRA products).
func aggregateElementwise(spec strategySpec, group string, keys []string, ms []member, first *adapter.Update, opts Options) (map[string]*adapter.Tensor, error) {
	if err := checkSameShapes(group, keys, ms); err != nil {
		return nil, err
	}
	xs := elementInputs(keys, ms, first)
	outs := make([][]float32, len(keys))
	result := make(map[string]*adapter.Tensor, len(keys))
	for k, key := range keys {
		t := adapter.NewTensor(ms[0].tensors[key].Shape...)
		result[key] = t
		outs[k] = t.Data
	}
	n := len(ms)
	if spec.coordinate {
		kern, err := coordinateKernel(spec, group, n, opts)
		if err != nil {
			return nil, err
		}
		runCoordinate(kern, xs, outs, opts.workers())
		return result, nil
	}
	var ref [][]float32
	if opts.Reference != nil {
		var err error
		if ref, err = referenceInputs(opts.Reference, group, keys, ms); err != nil {
			return nil, err
		}
	}
	p := newPopulation(group, ms, ref != nil)
	p.gramFn = func() (*gram, error) {
		items := n
		all := xs
		if ref != nil {
			items++
			all = make([][][]float32, len(xs))
			for k := range xs {
				all[k] = append(append([][]float32(nil), xs[k]...), ref[k])
			}
		}
		return elementGram(all, items, opts.workers()), nil
	}
	c, err := spec.coef(p, opts)
	if err != nil {
		return nil, err
	}
	if err := checkCoefficients(group, c); err != nil {
		return nil, err
	}
	runCombination(c, xs, outs, opts.workers())
	return result, nil
}

// coordinateKernel picks the order-statistic kernel for n values.
func coordinateKernel(spec strategySpec, group string, n int, opts Options) (func([]float32, [][]float32, *orderScratch), error) {
	k := 0
	if !spec.median {
		k = trimCount(opts.TrimFraction, n)
		if n-2*k < 1 {
			return nil, fmt.Errorf("%w: group %s: trim_fraction %v cuts %d of %d updates from each side", ErrTrimAll, group, opts.TrimFraction, k, n)
		}
	}
	return orderKernel(n, k, spec.median), nil
}

// runCoordinate applies kern to every tensor, spans spread over workers.
func runCoordinate(kern func([]float32, [][]float32, *orderScratch), xs [][][]float32, outs [][]float32, workers int) {
	lengths := make([]int, len(outs))
	for k, o := range outs {
		lengths[k] = len(o)
	}
	spans := splitSpans(lengths)
	workers = effectiveWorkers(spans, workers)
	scratch := make([]orderScratch, workers)
	inputs := make([][][]float32, workers)
	runSpans(spans, workers, func(w int, s span) {
		in := inputs[w][:0]
		for _, x := range xs[s.t] {
			in = append(in, x[s.lo:s.hi])
		}
		inputs[w] = in
		kern(outs[s.t][s.lo:s.hi], in, &scratch[w])
	})
}

// runCombination writes Σ c_i x_i into every output, skipping zero
// coefficients (Krum's unselected updates cost nothing).
func runCombination(c []float64, xs [][][]float32, outs [][]float32, workers int) {
	var idx []int
	var w []float32
	for i, ci := range c {
		if ci != 0 {
			idx = append(idx, i)
			w = append(w, float32(ci))
		}
	}
	lengths := make([]int, len(outs))
	for k, o := range outs {
		lengths[k] = len(o)
	}
	spans := splitSpans(lengths)
	workers = effectiveWorkers(spans, workers)
	inputs := make([][][]float32, workers)
	runSpans(spans, workers, func(wk int, s span) {
		in := inputs[wk][:0]
		for _, i := range idx {
			in = append(in, xs[s.t][i][s.lo:s.hi])
		}
		inputs[wk] = in
		weightedSum(outs[s.t][s.lo:s.hi], in, w)
	})
}

func newPopulation(group string, ms []member, hasRef bool) *population {
	p := &population{group: group, hasRef: hasRef}
	for _, m := range ms {
		p.nodes = append(p.nodes, m.node)
		p.samples = append(p.samples, m.u.Meta.Samples)
		p.quality = append(p.quality, m.u.Meta.Quality[group])
	}
	return p
}

// checkCoefficients is the last guard against a NaN model: coefficients
// must be finite and not all zero.
func checkCoefficients(group string, c []float64) error {
	var sum float64
	for _, v := range c {
		if !finite(v) {
			return fmt.Errorf("%w: group %s: aggregation weights %v are not finite", ErrZeroWeights, group, c)
		}
		sum += v
	}
	if sum == 0 {
		return fmt.Errorf("%w: group %s", ErrZeroWeights, group)
	}
	return nil
}
