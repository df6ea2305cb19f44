package dlm

import "math"

// cosineSchedule is the masking schedule of the forward process: at time
// t ∈ [0, MaxT] each byte is independently replaced by the mask token with
// probability MaskRate(t) = 1 − cos(π/2 · t/MaxT). It is 0 at t = 0 (clean
// text) and 1 at t = MaxT (all masked), flat near t = 0, so the fine group
// [0,300) sees few masks (≤ 11%) and the coarse group [700,1000) most (≥ 55%).
type cosineSchedule struct{}

// MaskRate is the probability that a byte is masked at time t.
func (cosineSchedule) MaskRate(t float64) float64 {
	t = min(max(t, 0), MaxT)
	return 1 - math.Cos(math.Pi/2*t/MaxT)
}

// elboWeight is m'(τ)/m(τ) for τ = t/MaxT: the weight that turns the
// expected cross-entropy of the masked bytes at time t into the integrand of
// the continuous-time ELBO of absorbing-state diffusion,
// −log p(x)/L ≤ ∫₀¹ m'(τ)/m(τ) · E[Σ_masked CE]/L dτ.
func (s cosineSchedule) elboWeight(t float64) float64 {
	m := s.MaskRate(t)
	if m <= 0 {
		return 0
	}
	tau := t / MaxT
	return math.Pi / 2 * math.Sin(math.Pi/2*tau) / m
}

// noise is the schedule the model uses.
var noise cosineSchedule

// timeBucket maps t to its learned time embedding.
func timeBucket(t float64) int {
	return min(max(int(t*TimeBuckets/MaxT), 0), TimeBuckets-1)
}
