package privacy

import (
	"fmt"
	"math"
)

// Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar
// and Zhang, "Rényi Differential Privacy of the Sampled Gaussian
// Mechanism", 2019, §3.3). With sampling rate q and noise multiplier z the
// RDP at order α is log(A_α)/(α-1), where
//
//	A_α = E_{x~N(0,z²)} [ (1 - q + q·exp((2x-1)/(2z²)))^α ].
//
// Everything is computed in log space, so tiny z, large orders and tiny q
// neither overflow nor underflow.

// MaxOrder bounds the RDP orders we accept. An integer order α costs α+1
// terms; orders beyond a few thousand never give the best ε for any
// practical δ.
const MaxOrder = 1e5

// maxSeriesTerms bounds the fractional-order series. It converges
// polynomially in the worst case (q near 1/2, z near 1); when it has not
// converged by then the order is dropped (its RDP is reported as +Inf),
// which can only make ε larger, never smaller.
const maxSeriesTerms = 1_000_000

// ValidateOrders checks an RDP order list: non-empty, every order finite,
// greater than 1 and at most MaxOrder. The error names the first bad order.
func ValidateOrders(orders []float64) error {
	if len(orders) == 0 {
		return fmt.Errorf("%w: empty order list", ErrBadParameter)
	}
	for i, a := range orders {
		if math.IsNaN(a) || math.IsInf(a, 0) || a <= 1 || a > MaxOrder {
			return fmt.Errorf("%w: order #%d = %v (want 1 < order ≤ %g)", ErrBadParameter, i+1, a, float64(MaxOrder))
		}
	}
	return nil
}

// rdpSubsampledGaussian returns the RDP at order alpha of one step of the
// Poisson-subsampled Gaussian mechanism. The caller has validated the
// arguments: z > 0, 0 < q ≤ 1, 1 < alpha ≤ MaxOrder.
func rdpSubsampledGaussian(q, z, alpha float64) float64 {
	if q == 1 {
		return alpha / (2 * z * z)
	}
	var logA float64
	if alpha == math.Trunc(alpha) {
		logA = logAIntegerOrder(q, z, int(alpha))
	} else {
		logA = logAFractional(q, z, alpha)
	}
	// A value that is not a number says the terms overflowed: no
	// guarantee at this order, never a zero one.
	if math.IsNaN(logA) {
		return math.Inf(1)
	}
	// A_α ≥ 1 by Jensen's inequality; a value a rounding error below
	// that is zero, not a negative divergence.
	if !(logA > 0) {
		return 0
	}
	return logA / (alpha - 1)
}

// The fractional series sums terms of order 1 with alternating signs, so
// its absolute error does not shrink with A_α - 1: measured against the
// exact integer expansion (at orders n + 1e-13, over q from 1e-20 to 0.99,
// z from 0.1 to 1e4, n up to 512) it stays below 2e-15 + 1e-9·log A. The
// margin below is five times that.
const (
	seriesAbsMargin = 1e-14
	seriesRelMargin = 1e-8
)

// logAFractional is log A_α at a fractional order, never below the true
// value. It takes the series of logAFractionalOrder, raised by its error
// margin, and bounds it by the integer expansion, which keeps full
// precision: log A_α is convex in α (a cumulant generating function, with
// log A_0 = log A_1 = 0), so it lies under the chord between its integer
// neighbours and above the chord of the two orders before. A series value
// that falls below that lower bound has lost its digits (tiny q, huge z,
// where A_α - 1 is far below the terms' rounding) and the upper chord is
// taken instead: a larger RDP can only make ε larger.
func logAFractional(q, z, alpha float64) float64 {
	n := math.Floor(alpha)
	logAInt := func(k float64) float64 {
		if k <= 1 {
			return 0
		}
		return logAIntegerOrder(q, z, int(k))
	}
	lo, hi := logAInt(n), logAInt(n+1)
	if math.IsInf(hi, 1) || math.IsNaN(hi) {
		return math.Inf(1)
	}
	frac := alpha - n
	upper := lo + frac*(hi-lo)
	lower := lo + frac*(lo-logAInt(n-1))
	s := logAFractionalOrder(q, z, alpha)
	s += seriesAbsMargin + seriesRelMargin*math.Abs(s)
	if !(s >= lower) {
		return upper
	}
	return math.Min(s, upper)
}

// logAIntegerOrder computes log A_α for integer α from the binomial
// expansion A_α = Σ_i C(α,i) q^i (1-q)^(α-i) exp((i²-i)/(2z²)). The
// binomial weights sum to one and the i = 0, 1 terms have exponent zero, so
// A_α - 1 = Σ_{i≥2} C(α,i) q^i (1-q)^(α-i) expm1((i²-i)/(2z²)), a sum of
// positive terms: log(A_α - 1) keeps full relative precision even when
// A_α is within 1e-16 of 1 (tiny q), which a direct log-sum cannot.
func logAIntegerOrder(q, z float64, alpha int) float64 {
	logQ, log1mQ := math.Log(q), math.Log1p(-q)
	twoZ2 := 2 * z * z
	a := float64(alpha)
	logAm1 := math.Inf(-1)
	logBinom := math.Log(a) // log C(α,1)
	for i := 2; i <= alpha; i++ {
		fi := float64(i)
		logBinom += math.Log(a-fi+1) - math.Log(fi)
		term := logBinom + fi*logQ + (a-fi)*log1mQ + logExpm1((fi*fi-fi)/twoZ2)
		logAm1 = logAdd(logAm1, term)
	}
	if logAm1 > 0 {
		return logAm1 + math.Log1p(math.Exp(-logAm1))
	}
	return math.Log1p(math.Exp(logAm1))
}

// logExpm1 returns log(exp(x) - 1) for x > 0.
func logExpm1(x float64) float64 {
	if x > 36 {
		return x + math.Log1p(-math.Exp(-x))
	}
	return math.Log(math.Expm1(x))
}

// seriesTolerance stops the fractional-order series once a term is below
// e^-30 ≈ 1e-13 of the sum (the criterion of Opacus): past α+1 the terms
// alternate in sign and shrink, so the rest of the series is smaller than
// the last term.
const seriesTolerance = 30

// logAFractionalOrder computes log A_α for fractional α with the series of
// Mironov et al. (2019), §3.3: the integral is split at
// z0 = z²·log(1/q - 1) + 1/2 and each half expanded in generalized
// binomial coefficients C(α,i), whose signs alternate once i > α+1.
func logAFractionalOrder(q, z, alpha float64) float64 {
	logQ, log1mQ := math.Log(q), math.Log1p(-q)
	twoZ2 := 2 * z * z
	z0 := z*z*(log1mQ-logQ) + 0.5
	sqrt2z := math.Sqrt2 * z
	logHalf := math.Log(0.5)

	a0, a1 := zeroSignedLog, zeroSignedLog
	binom := signedLog{log: 0} // C(α,0) = 1
	for i := 0; i < maxSeriesTerms; i++ {
		fi := float64(i)
		j := alpha - fi
		logT0 := binom.log + fi*logQ + j*log1mQ
		logT1 := binom.log + j*logQ + fi*log1mQ
		logE0 := logHalf + logErfc((fi-z0)/sqrt2z)
		logE1 := logHalf + logErfc((z0-j)/sqrt2z)
		logS0 := logT0 + (fi*fi-fi)/twoZ2 + logE0
		logS1 := logT1 + (j*j-j)/twoZ2 + logE1
		a0 = a0.add(signedLog{neg: binom.neg, log: logS0})
		a1 = a1.add(signedLog{neg: binom.neg, log: logS1})

		total := a0.add(a1)
		if fi > alpha+1 && math.Max(logS0, logS1) < total.log-seriesTolerance {
			if total.neg || math.IsNaN(total.log) {
				return math.Inf(1)
			}
			return total.log
		}
		// C(α,i+1) = C(α,i)·(α-i)/(i+1).
		factor := (alpha - fi) / (fi + 1)
		binom.log += math.Log(math.Abs(factor))
		if factor < 0 {
			binom.neg = !binom.neg
		}
	}
	return math.Inf(1)
}

// epsilonFromRDP converts RDP guarantees at several orders into the best
// (ε, δ)-DP guarantee with the conversion of Balle et al. 2020
// ("Hypothesis testing interpretations and Rényi differential privacy",
// Theorem 21), the one Opacus and dp_accounting use:
//
//	ε = rdp + log((α-1)/α) - (log δ + log α)/(α-1).
//
// It returns the smallest ε over the orders and the order that gives it,
// never below MinEpsilon.
func epsilonFromRDP(orders, rdp []float64, delta float64) (eps, bestOrder float64) {
	eps = math.Inf(1)
	logDelta := math.Log(delta)
	for i, a := range orders {
		r := rdp[i]
		if math.IsInf(r, 1) || math.IsNaN(r) {
			continue
		}
		e := r + math.Log1p(-1/a) - (logDelta+math.Log(a))/(a-1)
		if e < eps {
			eps, bestOrder = e, a
		}
	}
	if eps < MinEpsilon {
		eps = MinEpsilon
	}
	return eps, bestOrder
}

// MinEpsilon is the smallest ε reported after a noisy release: 2⁻⁵², the
// smallest ε whose e^ε differs from 1 in float64. A bound below it (even a
// negative one) means the releases are in fact (0, δ)-DP: their total
// variation is at most δ, as happens for a large δ with much noise or rare
// sampling. Any ε ≥ 0 is then a valid guarantee, and reporting this floor
// instead of 0 keeps a noisy release from ever reading as no release.
const MinEpsilon = 0x1p-52
