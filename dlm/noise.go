package dlm

import "github.com/dafnet/daf/schedule"

// MaxT is the end of the diffusion time axis; t ∈ [0, MaxT].
const MaxT = schedule.MaxT

// noise is the masking schedule of the forward process: at time t each byte
// is independently replaced by the mask token with probability
// MaskRate(t), from 0 at t = 0 to 1 at t = MaxT. Under the cosine schedule
// the fine group [0,300) sees mask rates below 0.2, the domain group
// [300,700) 0.2–0.8 and the coarse group [700,1000) above 0.8.
var noise schedule.NoiseSchedule = schedule.Cosine{}

// elboWeight is (m(t) − m(t−1)) / m(t): the probability that a byte masked
// at time t is revealed in the reverse step to t − 1. The discrete-time
// ELBO of absorbing-state diffusion is
//
//	−log p(x) ≤ Σ_{t=1..MaxT} E[ elboWeight(t) · Σ_{masked at t} −log p(x_i | z_t) ]
//
// (the prior term vanishes because m(MaxT) = 1, the reconstruction term
// because m(0) = 0).
func elboWeight(t int) float64 {
	if t <= 0 {
		return 0
	}
	m := noise.MaskRate(t)
	if m <= 0 {
		return 0
	}
	return (m - noise.MaskRate(t-1)) / m
}

// timeBucket maps t to its learned time embedding.
func timeBucket(t int) int {
	return min(max(t*TimeBuckets/MaxT, 0), TimeBuckets-1)
}
