package aggregate

import "math"

// Coordinate-wise order statistics over n inputs. Every kernel writes
// dst[j] from xs[0][j] … xs[n-1][j]; xs are at least as long as dst.
// Where the comparator networks of kernel_network.go are vectorised
// (amd64 with AVX2), orderKernel hands them every median and trimmed mean
// of 3 to maxNetworkInputs inputs; the scalar kernels here are the
// fallback, kept and tested on every machine.
//
// The trimmed sum is never computed as "total minus the extremes": an
// attacker's 1e30 would swallow every honest value in the total. Instead
// the kept values are summed directly, or (for k = 1) every value is clamped
// to the range of the kept ones, whose ends are honest values themselves.

// orderBlock is how many elements the transposing kernels gather at once:
// 64 elements × 50 inputs × 4 B = 12.5 KiB of scratch, inside L1.
const orderBlock = 64

// clampBlock sizes the per-element state of the streaming k = 1 kernel
// (four float32 arrays and a float64 sum) so that state and one input's
// slice fit in L1.
const clampBlock = 1024

// orderScratch is a worker's private buffers for the transposing and the
// network kernels.
type orderScratch struct {
	keys []int32
	net  networkScratch
}

func (s *orderScratch) get(n int) []int32 {
	if cap(s.keys) < n {
		s.keys = make([]int32, n)
	}
	return s.keys[:n]
}

// meanKernel is the k = 0 trimmed mean.
func meanKernel(dst []float32, xs [][]float32) {
	w := make([]float32, len(xs))
	for i := range w {
		w[i] = 1 / float32(len(xs))
	}
	weightedSum(dst, xs, w)
}

// trimOneKernel is the trimmed mean with one value cut from each end, for
// any n ≥ 3. Pass one tracks, per element, the two smallest and two largest
// values with branch-free min/max; pass two sums every value clamped to
// [second smallest, second largest]: the kept values pass unchanged and the
// two cut ones become the ends, which are subtracted again. The sum is
// kept in float64: n values near 3e38 overflow float32 even though their
// mean does not.
func trimOneKernel(dst []float32, xs [][]float32) {
	var lo1, lo2, hi1, hi2 [clampBlock]float32
	var acc [clampBlock]float64
	n := len(xs)
	inv := 1 / float64(n-2)
	for b := 0; b < len(dst); b += clampBlock {
		e := min(b+clampBlock, len(dst))
		m := e - b
		l1, l2, h1, h2 := lo1[:m], lo2[:m], hi1[:m], hi2[:m]
		x0, x1 := xs[0][b:e], xs[1][b:e]
		x0, x1 = x0[:m], x1[:m]
		for j := range l1 {
			a, c := x0[j], x1[j]
			l1[j], l2[j] = min(a, c), max(a, c)
			h1[j], h2[j] = max(a, c), min(a, c)
		}
		for i := 2; i < n; i++ {
			x := xs[i][b:e]
			x = x[:m]
			for j, v := range x {
				l2[j] = min(l2[j], max(l1[j], v))
				l1[j] = min(l1[j], v)
				h2[j] = max(h2[j], min(h1[j], v))
				h1[j] = max(h1[j], v)
			}
		}
		a := acc[:m]
		for j := range a {
			a[j] = 0
		}
		for i := 0; i < n; i++ {
			x := xs[i][b:e]
			x = x[:m]
			for j, v := range x {
				a[j] += float64(min(max(v, l2[j]), h2[j]))
			}
		}
		d := dst[b:e]
		d = d[:m]
		for j := range d {
			d[j] = float32((a[j] - float64(l2[j]) - float64(h2[j])) * inv)
		}
	}
}

// median3 is the middle of three values without branches.
func median3(a, b, c float32) float32 {
	return max(min(a, b), min(max(a, b), c))
}

// median5 is the middle of five values: the smaller of each pair (a,b),
// (c,d) whose larger "min" cannot be the median's lower neighbour twice,
// and symmetrically for the maxima; the median of those two and e is the
// median of all five.
func median5(a, b, c, d, e float32) float32 {
	return median3(e, max(min(a, b), min(c, d)), min(max(a, b), max(c, d)))
}

func median3Kernel(dst []float32, xs [][]float32) {
	x0, x1, x2 := xs[0][:len(dst)], xs[1][:len(dst)], xs[2][:len(dst)]
	for j := range dst {
		dst[j] = median3(x0[j], x1[j], x2[j])
	}
}

func median4Kernel(dst []float32, xs [][]float32) {
	x0, x1, x2, x3 := xs[0][:len(dst)], xs[1][:len(dst)], xs[2][:len(dst)], xs[3][:len(dst)]
	for j := range dst {
		a, b := min(x0[j], x1[j]), max(x0[j], x1[j])
		c, d := min(x2[j], x3[j]), max(x2[j], x3[j])
		// The two middle values are the larger minimum and the smaller maximum.
		dst[j] = float32((float64(max(a, c)) + float64(min(b, d))) / 2)
	}
}

func median5Kernel(dst []float32, xs [][]float32) {
	x0, x1, x2, x3, x4 := xs[0][:len(dst)], xs[1][:len(dst)], xs[2][:len(dst)], xs[3][:len(dst)], xs[4][:len(dst)]
	for j := range dst {
		dst[j] = median5(x0[j], x1[j], x2[j], x3[j], x4[j])
	}
}

// trimGeneralKernel is the trimmed mean for any k with n − 2k ≥ 1, by
// partial selection on each element's gathered keys: select the k-th
// smallest (the k below it are cut), then, among the rest, the one with k
// above it; the values between are summed directly.
func trimGeneralKernel(dst []float32, xs [][]float32, k int, sc *orderScratch) {
	n := len(xs)
	t := sc.get(orderBlock * n)
	inv := 1 / float64(n-2*k)
	for b := 0; b < len(dst); b += orderBlock {
		e := min(b+orderBlock, len(dst))
		gatherKeys(t, xs, b, e)
		for j := b; j < e; j++ {
			v := t[(j-b)*n : (j-b+1)*n]
			if k > 0 {
				selectKey(v, k)
				selectKey(v[k:], n-2*k-1)
			}
			var s float64
			for _, x := range v[k : n-k] {
				s += float64(fromKey(x))
			}
			dst[j] = float32(s * inv)
		}
	}
}

// medianGeneralKernel is the coordinate-wise median for any n.
func medianGeneralKernel(dst []float32, xs [][]float32, sc *orderScratch) {
	n := len(xs)
	t := sc.get(orderBlock * n)
	m := n / 2
	for b := 0; b < len(dst); b += orderBlock {
		e := min(b+orderBlock, len(dst))
		gatherKeys(t, xs, b, e)
		for j := b; j < e; j++ {
			v := t[(j-b)*n : (j-b+1)*n]
			if n%2 == 1 {
				dst[j] = fromKey(selectKey(v, m))
				continue
			}
			lo := selectKey(v, m-1)
			hi := v[m]
			for _, x := range v[m+1:] {
				hi = min(hi, x)
			}
			dst[j] = float32((float64(fromKey(lo)) + float64(fromKey(hi))) / 2)
		}
	}
}

// trimFiveKernel is the trimmed mean of five values with one cut per side
// (β = 0.2 at the demo's five nodes): an optimal 9-comparator sorting
// network in registers, then the middle three summed.
func trimFiveKernel(dst []float32, xs [][]float32) {
	x0, x1, x2, x3, x4 := xs[0][:len(dst)], xs[1][:len(dst)], xs[2][:len(dst)], xs[3][:len(dst)], xs[4][:len(dst)]
	for j := range dst {
		a, b, c, d, e := sortKey(x0[j]), sortKey(x1[j]), sortKey(x2[j]), sortKey(x3[j]), sortKey(x4[j])
		a, b = min(a, b), max(a, b)
		d, e = min(d, e), max(d, e)
		c, e = min(c, e), max(c, e)
		c, d = min(c, d), max(c, d)
		b, e = min(b, e), max(b, e)
		a, d = min(a, d), max(a, d)
		a, c = min(a, c), max(a, c)
		b, d = min(b, d), max(b, d)
		b, c = min(b, c), max(b, c)
		dst[j] = float32((float64(fromKey(b)) + float64(fromKey(c)) + float64(fromKey(d))) * (1.0 / 3))
	}
}

// trimCount is floor(β·n); the tiny slack keeps 0.29·100 from becoming 28.
func trimCount(beta float64, n int) int {
	return int(math.Floor(beta*float64(n) + 1e-9))
}

// orderKernel returns the kernel for a trimmed mean with k cut per side
// (k = (n-1)/2 for an odd median) or the median (median = true).
func orderKernel(n, k int, median bool) func(dst []float32, xs [][]float32, sc *orderScratch) {
	if !median && n-2*k <= 2 {
		// Keeping the middle one or two values is the median.
		median = true
	}
	if useNetworks && n >= 3 && n <= maxNetworkInputs && (median || k > 0) {
		nw := trimNetwork(n, k)
		if median {
			nw = medianNetwork(n)
		}
		return func(dst []float32, xs [][]float32, sc *orderScratch) { nw.run(dst, xs, &sc.net) }
	}
	if median {
		switch n {
		case 1:
			return func(dst []float32, xs [][]float32, _ *orderScratch) { copy(dst, xs[0]) }
		case 2:
			return func(dst []float32, xs [][]float32, _ *orderScratch) { meanKernel(dst, xs) }
		case 3:
			return func(dst []float32, xs [][]float32, _ *orderScratch) { median3Kernel(dst, xs) }
		case 4:
			return func(dst []float32, xs [][]float32, _ *orderScratch) { median4Kernel(dst, xs) }
		case 5:
			return func(dst []float32, xs [][]float32, _ *orderScratch) { median5Kernel(dst, xs) }
		}
		return medianGeneralKernel
	}
	switch {
	case n == 5 && k == 1:
		return func(dst []float32, xs [][]float32, _ *orderScratch) { trimFiveKernel(dst, xs) }
	case k == 0:
		return func(dst []float32, xs [][]float32, _ *orderScratch) { meanKernel(dst, xs) }
	case k == 1:
		return func(dst []float32, xs [][]float32, _ *orderScratch) { trimOneKernel(dst, xs) }
	}
	return func(dst []float32, xs [][]float32, sc *orderScratch) { trimGeneralKernel(dst, xs, k, sc) }
}
