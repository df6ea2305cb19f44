package privacy

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// checkEpsDelta validates a per-release (ε, δ) pair and a sensitivity.
func checkEpsDelta(epsilon, delta, sensitivity float64) error {
	if math.IsNaN(epsilon) || math.IsInf(epsilon, 0) || epsilon <= 0 {
		return fmt.Errorf("%w: epsilon = %v (want a finite value > 0)", ErrBadParameter, epsilon)
	}
	if !(delta > 0 && delta < 1) {
		return fmt.Errorf("%w: delta = %v (want 0 < δ < 1)", ErrBadParameter, delta)
	}
	if math.IsNaN(sensitivity) || math.IsInf(sensitivity, 0) || sensitivity <= 0 {
		return fmt.Errorf("%w: sensitivity = %v (want a finite value > 0)", ErrBadParameter, sensitivity)
	}
	return nil
}

// AnalyticGaussianSigma returns the smallest σ for which adding N(0, σ²)
// noise to a function of L2 sensitivity Δ is (ε, δ)-DP, for any ε > 0
// (Balle and Wang, "Improving the Gaussian Mechanism for Differential
// Privacy", ICML 2018). It uses their exact characterization (Theorem 8):
// with s = σ/Δ the mechanism is (ε, δ)-DP if and only if
//
//	Φ(1/(2s) - εs) - e^ε·Φ(-1/(2s) - εs) ≤ δ,
//
// whose left side falls as s grows, and bisects on it in log space. The σ
// returned is on the safe side of the bisection interval, which is
// narrower than 1e-13 relative.
func AnalyticGaussianSigma(epsilon, delta, sensitivity float64) (float64, error) {
	if err := checkEpsDelta(epsilon, delta, sensitivity); err != nil {
		return 0, err
	}
	logDelta := math.Log(delta)
	ok := func(s float64) bool { return gaussianLogDelta(epsilon, s) <= logDelta }
	lo, hi := 1.0, 1.0
	if ok(hi) {
		for ok(lo) {
			hi, lo = lo, lo/2
		}
	} else {
		for !ok(hi) {
			lo, hi = hi, hi*2
			if hi > 1e300 {
				return 0, fmt.Errorf("%w: epsilon = %v, delta = %v need noise beyond float64 range", ErrBadParameter, epsilon, delta)
			}
		}
	}
	for i := 0; i < 200 && (hi-lo) > 1e-14*hi; i++ {
		mid := lo + (hi-lo)/2
		if ok(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	sigma := hi * sensitivity
	if math.IsInf(sigma, 1) {
		return 0, fmt.Errorf("%w: sensitivity = %v: σ = %g × sensitivity is beyond float64 range", ErrBadParameter, sensitivity, hi)
	}
	return sigma, nil
}

// gaussianLogDelta returns log δ(ε) of the Gaussian mechanism with noise
// multiplier s (σ/Δ): log(Φ(a) - e^ε Φ(b)) with a = 1/(2s) - εs and
// b = a - 1/s, -Inf when it is zero. It is evaluated as
// (Φ(a) - Φ(b)) - (e^ε - 1)·Φ(b) in log space, with Φ(a) - Φ(b) integrated
// directly when the two are too close to subtract: for tiny ε the solution
// has s in the millions or beyond, where the plain difference would lose
// every digit.
func gaussianLogDelta(epsilon, s float64) float64 {
	half, mid := 1/(2*s), -epsilon*s
	a, b := mid+half, mid-half
	logPhiA, logPhiB := logNormCDF(a), logNormCDF(b)
	if math.IsInf(logPhiA, -1) || math.IsNaN(logPhiA) {
		return math.Inf(-1)
	}
	var logDiff float64
	if logPhiA-logPhiB > 1e-3 {
		logDiff = logPhiA + math.Log(-math.Expm1(logPhiB-logPhiA))
	} else {
		logDiff = logNormProbAround(mid, half)
	}
	logSub := logExpm1(epsilon) + logPhiB
	if logSub >= logDiff {
		return math.Inf(-1)
	}
	return logDiff + math.Log(-math.Expm1(logSub-logDiff))
}

// Five-point Gauss–Legendre nodes and weights on [-1, 1].
var (
	glNodes   = [5]float64{-0.9061798459386640, -0.5384693101056831, 0, 0.5384693101056831, 0.9061798459386640}
	glWeights = [5]float64{0.2369268850561891, 0.4786286704993665, 0.5688888888888889, 0.4786286704993665, 0.2369268850561891}
)

// logNormProbAround returns log(Φ(mid+half) - Φ(mid-half)) for an interval
// over which the normal density changes by well under a percent
// (gaussianLogDelta uses it only then), where five Gauss–Legendre points
// are exact to float64 precision. Taking the midpoint and half-width, not
// the ends, keeps an interval far narrower than its position's ulp.
func logNormProbAround(mid, half float64) float64 {
	acc := math.Inf(-1)
	for i, x := range glNodes {
		t := mid + half*x
		acc = logAdd(acc, math.Log(glWeights[i])-t*t/2)
	}
	return acc + math.Log(half) - 0.5*math.Log(2*math.Pi)
}

// GaussianEpsilon returns the exact ε at which N(0, σ²) noise on a
// function of L2 sensitivity Δ is (ε, δ)-DP: the inverse of
// AnalyticGaussianSigma. It returns 0 when the mechanism is already
// (0, δ)-DP.
func GaussianEpsilon(sigma, delta, sensitivity float64) (float64, error) {
	if math.IsNaN(sigma) || math.IsInf(sigma, 0) || sigma <= 0 {
		return 0, fmt.Errorf("%w: sigma = %v (want a finite value > 0)", ErrBadParameter, sigma)
	}
	if err := checkEpsDelta(1, delta, sensitivity); err != nil {
		return 0, err
	}
	s := sigma / sensitivity
	logDelta := math.Log(delta)
	if gaussianLogDelta(0, s) <= logDelta {
		return 0, nil
	}
	lo, hi := 0.0, 1.0
	for gaussianLogDelta(hi, s) > logDelta {
		lo, hi = hi, hi*2
		if hi > 1e300 {
			return math.Inf(1), nil
		}
	}
	for i := 0; i < 200 && (hi-lo) > 1e-14*hi; i++ {
		mid := lo + (hi-lo)/2
		if gaussianLogDelta(mid, s) <= logDelta {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, nil
}

// ClassicGaussianSigma returns the textbook σ = Δ·√(2 ln(1.25/δ))/ε (Dwork
// and Roth, Theorem A.1), the seed's formula. Its proof needs ε < 1; at
// larger ε that σ is not known to give (ε, δ)-DP, so it is refused
// (ErrClassicInvalid) and AnalyticGaussianSigma is the answer there.
func ClassicGaussianSigma(epsilon, delta, sensitivity float64) (float64, error) {
	if err := checkEpsDelta(epsilon, delta, sensitivity); err != nil {
		return 0, err
	}
	if epsilon >= 1 {
		return 0, fmt.Errorf("%w: epsilon = %v: the classic bound σ = Δ·√(2 ln(1.25/δ))/ε is proven only for ε < 1; use the analytic Gaussian mechanism", ErrClassicInvalid, epsilon)
	}
	return sensitivity * math.Sqrt(2*math.Log(1.25/delta)) / epsilon, nil
}

// AddGaussianNoise adds independent N(0, σ²) noise to every value of every
// tensor, in a fixed order (sorted groups and keys), so a seeded rng gives
// the same noise every time. Draws come from rng.NormFloat64, an exact
// normal sampler (ziggurat). σ must be finite and ≥ 0 (PrepareRelease
// checks it); σ = 0 and any value outside that domain leave u unchanged,
// since noise of NaN or infinite scale would destroy the model.
func AddGaussianNoise(u *adapter.Update, sigma float64, rng *rand.Rand) {
	if !(sigma > 0) || math.IsInf(sigma, 0) || rng == nil {
		return
	}
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			data := u.Groups[g][k].Data
			for i := range data {
				data[i] = float32(float64(data[i]) + sigma*rng.NormFloat64())
			}
		}
	}
}
