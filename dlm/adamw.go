package dlm

import "math"

// adamW is decoupled-weight-decay Adam (Loshchilov & Hutter) over one flat
// parameter vector, with bias correction. β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
type adamW struct {
	m, v []float32
	step int
}

func newAdamW(n int) *adamW { return &adamW{m: make([]float32, n), v: make([]float32, n)} }

// update takes one step. lrScale, when non-nil, multiplies the learning
// rate (and with it the decoupled decay) per parameter.
func (o *adamW) update(params, grad []float32, lr, weightDecay float64, lrScale []float32) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	o.step++
	c1 := 1 - math.Pow(b1, float64(o.step))
	c2 := 1 - math.Pow(b2, float64(o.step))
	stepSize := float32(lr / c1)
	decayRate := float32(lr * weightDecay)
	rc2 := float32(1 / math.Sqrt(c2))
	for i, g := range grad {
		m := b1*o.m[i] + (1-b1)*g
		v := b2*o.v[i] + (1-b2)*g*g
		o.m[i], o.v[i] = m, v
		s := float32(1)
		if lrScale != nil {
			s = lrScale[i]
		}
		params[i] = params[i]*(1-s*decayRate) - s*stepSize*m/(float32(math.Sqrt(float64(v)))*rc2+eps)
	}
}

// clipNorm scales grad so its Euclidean norm is at most limit (no-op when
// limit ≤ 0) and returns the norm before clipping.
func clipNorm(grad []float32, limit float64) float64 {
	var s float64
	for _, g := range grad {
		s += float64(g) * float64(g)
	}
	norm := math.Sqrt(s)
	if limit > 0 && norm > limit {
		f := float32(limit / norm)
		for i := range grad {
			grad[i] *= f
		}
	}
	return norm
}
