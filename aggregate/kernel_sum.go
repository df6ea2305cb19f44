package aggregate

// sumBlock keeps the accumulator of weightedSum in L1 while the inputs
// stream through: 2048 float32 = 8 KiB.
const sumBlock = 2048

// weightedSum sets dst = Σ w[i]·xs[i] (every xs[i] as long as dst).
// Inputs are folded four at a time so the accumulator is loaded and stored
// once per four inputs; with N = 5 the loop is bound by memory, not by
// arithmetic.
func weightedSum(dst []float32, xs [][]float32, w []float32) {
	n := len(xs)
	for b := 0; b < len(dst); b += sumBlock {
		e := min(b+sumBlock, len(dst))
		d := dst[b:e]
		i := 0
		switch {
		case n >= 4:
			w0, w1, w2, w3 := w[0], w[1], w[2], w[3]
			x0, x1, x2, x3 := xs[0][b:e], xs[1][b:e], xs[2][b:e], xs[3][b:e]
			x0, x1, x2, x3 = x0[:len(d)], x1[:len(d)], x2[:len(d)], x3[:len(d)]
			for j := range d {
				d[j] = w0*x0[j] + w1*x1[j] + w2*x2[j] + w3*x3[j]
			}
			i = 4
		case n >= 2:
			w0, w1 := w[0], w[1]
			x0, x1 := xs[0][b:e], xs[1][b:e]
			x0, x1 = x0[:len(d)], x1[:len(d)]
			for j := range d {
				d[j] = w0*x0[j] + w1*x1[j]
			}
			i = 2
		default:
			w0 := w[0]
			x0 := xs[0][b:e]
			x0 = x0[:len(d)]
			for j := range d {
				d[j] = w0 * x0[j]
			}
			i = 1
		}
		for ; i+4 <= n; i += 4 {
			w0, w1, w2, w3 := w[i], w[i+1], w[i+2], w[i+3]
			x0, x1, x2, x3 := xs[i][b:e], xs[i+1][b:e], xs[i+2][b:e], xs[i+3][b:e]
			x0, x1, x2, x3 = x0[:len(d)], x1[:len(d)], x2[:len(d)], x3[:len(d)]
			for j := range d {
				d[j] += w0*x0[j] + w1*x1[j] + w2*x2[j] + w3*x3[j]
			}
		}
		for ; i+2 <= n; i += 2 {
			w0, w1 := w[i], w[i+1]
			x0, x1 := xs[i][b:e], xs[i+1][b:e]
			x0, x1 = x0[:len(d)], x1[:len(d)]
			for j := range d {
				d[j] += w0*x0[j] + w1*x1[j]
			}
		}
		for ; i < n; i++ {
			w0 := w[i]
			x0 := xs[i][b:e]
			x0 = x0[:len(d)]
			for j := range d {
				d[j] += w0 * x0[j]
			}
		}
	}
}
