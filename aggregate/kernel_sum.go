package aggregate

// sumBlock keeps the accumulator of weightedSum in L1 while the inputs
// stream through: 2048 float32 = 8 KiB.
const sumBlock = 2048

// sumFold is how many inputs one sumPass folds into the accumulator: the
// assembly keeps a weight per input in a vector register and an address
// per input in a general one, and eight of each fit.
const sumFold = 8

// useSumAsm routes weightedSum to the vector kernel. It is on only where
// that is the assembly; tests switch it to run both paths.
var useSumAsm = haveSumAsm

// weightedSum sets dst = Σ w[i]·xs[i] (every xs[i] as long as dst, and
// len(w) ≥ len(xs) ≥ 1), summed in float32 in input order.
func weightedSum(dst []float32, xs [][]float32, w []float32) {
	if useSumAsm {
		weightedSumFolded(dst, xs, w)
		return
	}
	weightedSumGo(dst, xs, w)
}

// weightedSumFolded runs sumPass over every block of the accumulator, up
// to sumFold inputs at a time. Which inputs a pass folds and in what order
// depends only on n, so every coordinate, wherever the spans cut, gets the
// same arithmetic.
func weightedSumFolded(dst []float32, xs [][]float32, w []float32) {
	n := len(xs)
	for b := 0; b < len(dst); b += sumBlock {
		d := dst[b:min(b+sumBlock, len(dst))]
		for i := 0; i < n; i += sumFold {
			j := min(i+sumFold, n)
			sumPass(d, xs[i:j], w[i:j], b, i == 0)
		}
	}
}

// weightedSumGo is weightedSum in scalar Go, for CPUs without the
// assembly. Inputs are folded four at a time so the accumulator is loaded
// and stored once per four inputs; with N = 5 the loop is bound by memory,
// not by arithmetic.
func weightedSumGo(dst []float32, xs [][]float32, w []float32) {
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
