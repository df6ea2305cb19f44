package aggregate

import (
	"math"
	"sort"
)

// The slow, obvious float64 versions every fast path is checked against.
// They work on plain vectors, one per update, with no Gram matrices, no
// blocking and no goroutines.

func slowWeighted(xs [][]float64, w []float64) []float64 {
	out := make([]float64, len(xs[0]))
	for i, x := range xs {
		for j, v := range x {
			out[j] += w[i] * v
		}
	}
	return out
}

func slowNormalise(w []float64) []float64 {
	var s float64
	for _, v := range w {
		s += v
	}
	out := make([]float64, len(w))
	for i, v := range w {
		out[i] = v / s
	}
	return out
}

func slowTrimmedMean(xs [][]float64, beta float64) []float64 {
	n := len(xs)
	k := int(math.Floor(beta*float64(n) + 1e-9))
	out := make([]float64, len(xs[0]))
	col := make([]float64, n)
	for j := range out {
		for i := range xs {
			col[i] = xs[i][j]
		}
		sort.Float64s(col)
		var s float64
		for _, v := range col[k : n-k] {
			s += v
		}
		out[j] = s / float64(n-2*k)
	}
	return out
}

func slowMedian(xs [][]float64) []float64 {
	n := len(xs)
	out := make([]float64, len(xs[0]))
	col := make([]float64, n)
	for j := range out {
		for i := range xs {
			col[i] = xs[i][j]
		}
		sort.Float64s(col)
		if n%2 == 1 {
			out[j] = col[n/2]
		} else {
			out[j] = (col[n/2-1] + col[n/2]) / 2
		}
	}
	return out
}

func slowDist(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return math.Sqrt(s)
}

func slowSoftmax(s []float64, t float64) []float64 {
	hi := math.Inf(-1)
	for _, v := range s {
		hi = max(hi, v)
	}
	w := make([]float64, len(s))
	for i, v := range s {
		w[i] = math.Exp((v - hi) / t)
	}
	return slowNormalise(w)
}

func slowMean(xs [][]float64) []float64 {
	w := make([]float64, len(xs))
	for i := range w {
		w[i] = 1 / float64(len(xs))
	}
	return slowWeighted(xs, w)
}

func slowAttention(xs [][]float64, ref []float64, t float64) []float64 {
	if ref == nil {
		ref = slowMean(xs)
	}
	d := make([]float64, len(xs))
	var mean float64
	for i, x := range xs {
		d[i] = slowDist(x, ref)
		mean += d[i] / float64(len(xs))
	}
	s := make([]float64, len(xs))
	for i := range s {
		if mean > 0 {
			s[i] = -d[i] / mean
		}
	}
	return slowWeighted(xs, slowSoftmax(s, t))
}

func slowKrumScores(xs [][]float64, f int) []float64 {
	n := len(xs)
	scores := make([]float64, n)
	for i := range xs {
		var ds []float64
		for j := range xs {
			if j != i {
				d := slowDist(xs[i], xs[j])
				ds = append(ds, d*d)
			}
		}
		sort.Float64s(ds)
		for _, d := range ds[:n-f-2] {
			scores[i] += d
		}
	}
	return scores
}

func slowKrum(xs [][]float64, f, m int) []float64 {
	scores := slowKrumScores(xs, f)
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	sel := make([][]float64, 0, m)
	for _, i := range idx[:m] {
		sel = append(sel, xs[i])
	}
	return slowMean(sel)
}

func slowTypicalNorm(xs [][]float64) float64 {
	d := make([]float64, len(xs))
	for i, x := range xs {
		d[i] = slowDist(x, make([]float64, len(x)))
	}
	sort.Float64s(d)
	return d[len(d)/2]
}

func slowGeometricMedian(xs [][]float64, samples []float64, nu float64, iters int) []float64 {
	alpha := slowNormalise(samples)
	scale := slowTypicalNorm(xs)
	nu *= max(scale, math.SmallestNonzeroFloat32)
	v := slowVardiZhangStart(xs, alpha)
	for it := 0; it < iters; it++ {
		beta := make([]float64, len(xs))
		for i, x := range xs {
			beta[i] = alpha[i] / max(nu, slowDist(v, x))
		}
		next := slowWeighted(xs, slowNormalise(beta))
		moved := slowDist(next, v)
		v = next
		if moved <= 1e-10*max(scale, math.SmallestNonzeroFloat32) {
			break
		}
	}
	return v
}

// slowVardiZhangStart: the weighted medoid x_k, or one Vardi–Zhang step
// from it, T·(1 − α_k/‖R‖) + x_k·α_k/‖R‖, when the pull R of the others
// exceeds the medoid's own weight.
func slowVardiZhangStart(xs [][]float64, alpha []float64) []float64 {
	k, best := 0, math.Inf(1)
	for i := range xs {
		var s float64
		for j := range xs {
			s += alpha[j] * slowDist(xs[i], xs[j])
		}
		if s < best {
			k, best = i, s
		}
	}
	dim := len(xs[k])
	pullVec := make([]float64, dim)
	t := make([]float64, dim)
	var atK, wsum float64
	for j, x := range xs {
		d := slowDist(x, xs[k])
		if d == 0 {
			atK += alpha[j]
			continue
		}
		wsum += alpha[j] / d
		for e := range x {
			pullVec[e] += alpha[j] * (x[e] - xs[k][e]) / d
			t[e] += alpha[j] / d * x[e]
		}
	}
	normR := slowDist(pullVec, make([]float64, dim))
	if wsum == 0 || normR <= atK {
		return append([]float64(nil), xs[k]...)
	}
	theta := atK / normR
	for e := range t {
		t[e] = (1-theta)*t[e]/wsum + theta*xs[k][e]
	}
	return t
}

func slowCenteredClip(xs [][]float64, tau float64, iters int) []float64 {
	n := len(xs)
	best, bestSum := 0, math.Inf(1)
	for i := range xs {
		var s float64
		for j := range xs {
			s += slowDist(xs[i], xs[j])
		}
		if s < bestSum {
			best, bestSum = i, s
		}
	}
	v := append([]float64(nil), xs[best]...)
	if tau == 0 {
		d := make([]float64, n)
		for i, x := range xs {
			d[i] = slowDist(x, v)
		}
		sort.Float64s(d)
		tau = d[n/2]
	}
	scale := slowTypicalNorm(xs)
	for it := 0; it < iters; it++ {
		next := append([]float64(nil), v...)
		for _, x := range xs {
			f := 1.0
			if d := slowDist(x, v); d > tau {
				f = tau / d
			}
			for j := range next {
				next[j] += f / float64(n) * (x[j] - v[j])
			}
		}
		moved := slowDist(next, v)
		v = next
		if moved <= 1e-10*max(scale, math.SmallestNonzeroFloat32) {
			break
		}
	}
	return v
}

// slowProduct is (α/r)·B·A as a dense out×in float64 matrix.
func slowProduct(a, b []float32, out, in, r int, scale float64) []float64 {
	m := make([]float64, out*in)
	for row := 0; row < out; row++ {
		for col := 0; col < in; col++ {
			var s float64
			for p := 0; p < r; p++ {
				s += float64(b[row*r+p]) * float64(a[p*in+col])
			}
			m[row*in+col] = scale * s
		}
	}
	return m
}
