package aggregate

// gram is a symmetric matrix of inner products between the items of a group
// (its contributors, then the reference if there is one), accumulated in
// float64. Every distance-based strategy works from it alone, so the same
// code serves element-wise tensors and LoRA products.
type gram struct {
	n int
	g []float64
}

func newGram(n int) *gram { return &gram{n: n, g: make([]float64, n*n)} }

func (m *gram) at(i, j int) float64 { return m.g[i*m.n+j] }

func (m *gram) add(i, j int, v float64) {
	m.g[i*m.n+j] += v
	if i != j {
		m.g[j*m.n+i] += v
	}
}

// dist2 is ‖x_i − x_j‖², clamped at 0 against rounding.
func (m *gram) dist2(i, j int) float64 {
	return max(0, m.at(i, i)+m.at(j, j)-2*m.at(i, j))
}

// comboDist2 returns ‖v − x_i‖² for every item i, where v = Σ c_k x_k over
// the first len(c) items.
func (m *gram) comboDist2(c []float64, items int) []float64 {
	gc := make([]float64, items)
	var vv float64
	for i := 0; i < items; i++ {
		var s float64
		for k, ck := range c {
			s += m.at(i, k) * ck
		}
		gc[i] = s
	}
	for k, ck := range c {
		vv += ck * gc[k]
	}
	out := make([]float64, items)
	for i := range out {
		out[i] = max(0, vv-2*gc[i]+m.at(i, i))
	}
	return out
}

// quadForm is dᵀ G d over the first len(d) items.
func (m *gram) quadForm(d []float64) float64 {
	var s float64
	for i, di := range d {
		if di == 0 {
			continue
		}
		for k, dk := range d {
			s += di * m.at(i, k) * dk
		}
	}
	return max(0, s)
}

// elementGram accumulates Σ_keys x_i·x_j over tensors given as
// xs[key][item], in parallel over spans of the parameter range.
func elementGram(xs [][][]float32, items, workers int) *gram {
	lengths := make([]int, len(xs))
	for k, its := range xs {
		lengths[k] = len(its[0])
	}
	spans := splitSpans(lengths)
	workers = effectiveWorkers(spans, workers)
	local := make([]*gram, workers)
	for w := range local {
		local[w] = newGram(items)
	}
	runSpans(spans, workers, func(w int, s span) {
		g := local[w]
		its := xs[s.t]
		for i := 0; i < items; i++ {
			a := its[i][s.lo:s.hi]
			for j := i; j < items; j++ {
				b := its[j][s.lo:s.hi]
				b = b[:len(a)]
				var d float64
				for e, v := range a {
					d += float64(v) * float64(b[e])
				}
				g.add(i, j, d)
			}
		}
	})
	total := local[0]
	for _, g := range local[1:] {
		for i := range total.g {
			total.g[i] += g.g[i]
		}
	}
	return total
}
