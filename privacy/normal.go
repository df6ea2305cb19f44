package privacy

import "math"

// Log-space normal tail functions. The RDP series and the analytic
// Gaussian mechanism both need log Φ(x) far into the tail, where Φ itself
// underflows float64 (Φ(-38) < 1e-308) while its logarithm is an ordinary
// number that the surrounding terms cancel against.

// asymptoticErfcFrom is where logErfc switches from math.Erfc to the
// asymptotic series: math.Erfc is accurate to a few ulp up to about 26 and
// underflows after 27; at 25 the series below is already exact to float64.
const asymptoticErfcFrom = 25.0

// logErfc returns log(erfc(x)) for any finite x.
func logErfc(x float64) float64 {
	if x < asymptoticErfcFrom {
		return math.Log(math.Erfc(x))
	}
	// erfc(x) = exp(-x²)/(x√π) · Σ_k (-1)^k (2k-1)!! / (2x²)^k. At x ≥ 25
	// the terms fall by at least 1/(2x²) ≈ 8e-4 each, so eight terms
	// leave an error far below float64 resolution.
	inv := 1 / (2 * x * x)
	sum, term := 1.0, 1.0
	for k := 1; k <= 8; k++ {
		term *= -float64(2*k-1) * inv
		sum += term
	}
	return -x*x - math.Log(x) - 0.5*math.Log(math.Pi) + math.Log(sum)
}

// logNormCDF returns log Φ(x), Φ the standard normal distribution function.
func logNormCDF(x float64) float64 {
	return math.Log(0.5) + logErfc(-x/math.Sqrt2)
}

// logAdd returns log(exp(a) + exp(b)) without overflow.
func logAdd(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	// Either term infinite: the sum is a (+Inf for an overflowed term;
	// Inf - Inf below would make it NaN).
	if math.IsInf(b, -1) || math.IsInf(a, 1) {
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}

// signedLog is a real number held as sign and log-magnitude, for sums whose
// terms alternate in sign and would overflow or underflow in linear space.
type signedLog struct {
	neg bool
	log float64 // log|x|; -Inf for zero
}

var zeroSignedLog = signedLog{log: math.Inf(-1)}

// add returns s + t.
func (s signedLog) add(t signedLog) signedLog {
	if math.IsInf(t.log, -1) {
		return s
	}
	if math.IsInf(s.log, -1) {
		return t
	}
	if s.neg == t.neg {
		return signedLog{neg: s.neg, log: logAdd(s.log, t.log)}
	}
	// Opposite signs: the larger magnitude keeps its sign.
	big, small := s, t
	if small.log > big.log {
		big, small = small, big
	}
	if big.log == small.log {
		return zeroSignedLog
	}
	return signedLog{neg: big.neg, log: big.log + math.Log(-math.Expm1(small.log-big.log))}
}
