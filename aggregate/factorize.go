package aggregate

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// exactTolerance is the relative Frobenius error allowed when a dense
// matrix is re-factorised "exactly": well below float32's own rounding of
// the dense values (≈ 6e-8 per entry, relative).
const exactTolerance = 1e-6

// orthonormalize turns the k vectors rows[i] (each of length m) into an
// orthonormal set spanning at least their span, by classical Gram–Schmidt
// applied twice. A vector that is (numerically) in the span of the ones
// before it is replaced by a random one, so that the set stays orthonormal
// and of size k; k must not exceed m.
func orthonormalize(rows [][]float64, rng *rand.Rand) {
	for i, v := range rows {
		orig := norm(v)
		for attempt := 0; ; attempt++ {
			for pass := 0; pass < 2; pass++ {
				for _, q := range rows[:i] {
					d := dot(q, v)
					for e := range v {
						v[e] -= d * q[e]
					}
				}
			}
			nv := norm(v)
			if nv > 1e-10*orig && nv > 0 {
				for e := range v {
					v[e] /= nv
				}
				break
			}
			for e := range v {
				v[e] = rng.NormFloat64()
			}
			orig = norm(v)
		}
	}
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func norm(a []float64) float64 { return math.Sqrt(dot(a, a)) }

// lowRank is a factorisation B·A of an out×in matrix with B out×r and A r×in
// (row-major float32), together with the squared Frobenius norms of the
// matrix and of what the factorisation leaves out.
type lowRank struct {
	rank         int
	b, a         []float32
	err2, norm2  float64
	singularVals []float64
}

// splitSVD builds the factors B = Qb·U·√S and A = √S·Vᵀ·Qaᵀ from the SVD of
// a core matrix, keeping r singular values and padding with zeros up to pad
// (pad ≥ r). qb holds rows of the out-side basis, qa of the in-side basis
// (each as basis vectors); qb or qa nil means the identity.
func splitSVD(svd *mat.SVD, out, in, r, pad int, qb, qa [][]float64) (b, a []float32) {
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	s := svd.Values(nil)
	b = make([]float32, out*pad)
	a = make([]float32, pad*in)
	for j := 0; j < r; j++ {
		root := math.Sqrt(s[j])
		// Column j of B: Qb·u_j·√σ_j.
		for row := 0; row < out; row++ {
			var x float64
			if qb == nil {
				x = u.At(row, j)
			} else {
				for t := range qb {
					x += qb[t][row] * u.At(t, j)
				}
			}
			b[row*pad+j] = float32(x * root)
		}
		// Row j of A: √σ_j·v_jᵀ·Qaᵀ.
		ar := a[j*in : (j+1)*in]
		if qa == nil {
			for col := 0; col < in; col++ {
				ar[col] = float32(v.At(col, j) * root)
			}
			continue
		}
		acc := make([]float64, in)
		for t := range qa {
			c := v.At(t, j) * root
			if c == 0 {
				continue
			}
			for col, q := range qa[t] {
				acc[col] += c * q
			}
		}
		for col, x := range acc {
			ar[col] = float32(x)
		}
	}
	return b, a
}

// keepRank is how many singular values an exact factorisation keeps: the
// fewest whose tail (plus what was already lost, lost2) stays within the
// exact tolerance.
func keepRank(s []float64, lost2, norm2 float64) int {
	tail := lost2
	r := len(s)
	for r > 0 && tail+s[r-1]*s[r-1] <= exactTolerance*exactTolerance*norm2 {
		tail += s[r-1] * s[r-1]
		r--
	}
	return r
}

// factorDense factorises the dense out×in matrix m (row-major). target > 0
// asks for that rank (padded with zeros when m has less); target = 0 asks
// for an exact factorisation of the smallest rank within exactTolerance,
// starting the search at rank guess. The range of m is found by a
// randomised range finder (Halko, Martinsson, Tropp 2011) grown until the
// residual is small enough, so the cost follows the rank found, not the
// size of m; the SVD then runs on the small projected matrix.
func factorDense(m []float32, out, in, target, guess int, rng *rand.Rand) lowRank {
	var norm2 float64
	for _, v := range m {
		norm2 += float64(v) * float64(v)
	}
	full := min(out, in)
	if norm2 == 0 {
		r := target
		return lowRank{rank: r, b: make([]float32, out*r), a: make([]float32, r*in)}
	}
	k := min(max(guess, 1)+8, full)
	if target > 0 {
		k = min(target+10, full)
	}
	md := mat.NewDense(out, in, nil)
	raw := md.RawMatrix().Data
	for i, v := range m {
		raw[i] = float64(v)
	}
	var qt *mat.Dense // k basis vectors of length out, as rows
	var proj mat.Dense
	var resid2 float64
	for {
		// Qᵀ = (M·Ω)ᵀ = Ωᵀ·Mᵀ, orthonormalised row by row.
		qt = mat.NewDense(k, out, nil)
		qt.Mul(gaussian(k, in, rng), md.T())
		orthonormalize(rowsOf(qt), rng)
		if target > 0 {
			// Two power iterations sharpen the basis on slowly decaying spectra.
			for it := 0; it < 2; it++ {
				var z mat.Dense
				z.Mul(qt, md) // (QᵀM), k×in
				orthonormalize(rowsOf(&z), rng)
				qt.Mul(&z, md.T())
				orthonormalize(rowsOf(qt), rng)
			}
		}
		proj.Reset()
		proj.Mul(qt, md) // Qᵀ·M, k×in
		resid2 = residualEstimate(md, qt, rng)
		if target > 0 || k == full || resid2 <= exactTolerance*exactTolerance*norm2/4 {
			break
		}
		k = min(2*k, full)
	}
	var svd mat.SVD
	svd.Factorize(&proj, mat.SVDThin)
	s := svd.Values(nil)
	r := target
	if target == 0 {
		r = keepRank(s, resid2, norm2)
	}
	keep := min(r, len(s))
	lost := resid2
	for _, v := range s[keep:] {
		lost += v * v
	}
	b, a := splitSVD(&svd, out, in, keep, r, rowsOf(qt), nil)
	return lowRank{rank: r, b: b, a: a, err2: lost, norm2: norm2, singularVals: s}
}

// gaussian is a rows×cols matrix of independent standard normal values.
func gaussian(rows, cols int, rng *rand.Rand) *mat.Dense {
	d := mat.NewDense(rows, cols, nil)
	raw := d.RawMatrix().Data
	for i := range raw {
		raw[i] = rng.NormFloat64()
	}
	return d
}

// rowsOf returns the rows of a dense matrix as slices sharing its storage.
func rowsOf(d *mat.Dense) [][]float64 {
	raw := d.RawMatrix()
	out := make([][]float64, raw.Rows)
	for i := range out {
		out[i] = raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
	}
	return out
}

// residualProbes is how many random vectors estimate what a basis misses.
const residualProbes = 8

// residualEstimate estimates ‖(I − QQᵀ)·M‖²_F as the mean of
// ‖(I − QQᵀ)·M·ω‖² over Gaussian ω (its expectation; Halko et al. §4.3).
// Computing it as ‖M‖² − ‖QᵀM‖² instead would bottom out near 1e-13·‖M‖²
// from cancellation, above the exact tolerance.
func residualEstimate(md, qt *mat.Dense, rng *rand.Rand) float64 {
	_, in := md.Dims()
	var y mat.Dense
	y.Mul(gaussian(residualProbes, in, rng), md.T()) // rows: (M·ω)ᵀ
	q := rowsOf(qt)
	var sum float64
	for _, row := range rowsOf(&y) {
		for pass := 0; pass < 2; pass++ {
			for _, qc := range q {
				d := dot(qc, row)
				for e := range row {
					row[e] -= d * qc[e]
				}
			}
		}
		sum += dot(row, row)
	}
	return sum / residualProbes
}

// factorStacked re-factorises B·A given as B (out×R) and A (R×in) to rank
// target (0 = exact, smallest rank within tolerance) without forming the
// dense product: thin QR of B and of Aᵀ by Gram–Schmidt, SVD of the R×R
// core R_B·R_Aᵀ, and the bases carried back. Needs R ≤ min(out, in).
func factorStacked(b, a []float32, out, in, bigR, target int, rng *rand.Rand) lowRank {
	// Column vectors of B and row vectors of A.
	qb := make([][]float64, bigR)
	qa := make([][]float64, bigR)
	for j := 0; j < bigR; j++ {
		qb[j] = make([]float64, out)
		for row := 0; row < out; row++ {
			qb[j][row] = float64(b[row*bigR+j])
		}
		qa[j] = make([]float64, in)
		for col := 0; col < in; col++ {
			qa[j][col] = float64(a[j*in+col])
		}
	}
	colsB := make([][]float64, bigR)
	rowsA := make([][]float64, bigR)
	for j := range qb {
		colsB[j] = append([]float64(nil), qb[j]...)
		rowsA[j] = append([]float64(nil), qa[j]...)
	}
	orthonormalize(qb, rng)
	orthonormalize(qa, rng)
	// R_B = Q_Bᵀ·B and R_A = Q_Aᵀ·Aᵀ; core = R_B·R_Aᵀ.
	rb := mat.NewDense(bigR, bigR, nil)
	ra := mat.NewDense(bigR, bigR, nil)
	for t := 0; t < bigR; t++ {
		for j := 0; j < bigR; j++ {
			rb.Set(t, j, dot(qb[t], colsB[j]))
			ra.Set(t, j, dot(qa[t], rowsA[j]))
		}
	}
	var core mat.Dense
	core.Mul(rb, ra.T())
	var svd mat.SVD
	svd.Factorize(&core, mat.SVDThin)
	s := svd.Values(nil)
	var norm2 float64
	for _, v := range s {
		norm2 += v * v
	}
	r := target
	if target == 0 {
		r = keepRank(s, 0, norm2)
	}
	keep := min(r, len(s))
	var lost float64
	for _, v := range s[keep:] {
		lost += v * v
	}
	bo, ao := splitSVD(&svd, out, in, keep, r, qb, qa)
	return lowRank{rank: r, b: bo, a: ao, err2: lost, norm2: norm2, singularVals: s}
}
