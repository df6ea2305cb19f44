package privacy

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// ReleaseReport says what PrepareRelease did to an update: the clip factor
// applied (1 = unchanged), and for a noised release the σ added to every
// value and the noise multiplier σ/clipBound that the ledger charges.
type ReleaseReport struct {
	ClipFactor      float64
	Sigma           float64
	NoiseMultiplier float64
	Noised          bool
}

// PrepareRelease prepares u, in place, for release at a tier: it clips u
// jointly to clipBound, and for the Public tier adds Gaussian noise with σ
// from the analytic Gaussian mechanism for (epsilon, delta) per release at
// sensitivity clipBound. Group and Tenant releases are clipped but not
// noised: their members are trusted (docs/PRIVACY.md). Private updates
// never leave the node, so preparing one for release is an error. rng is
// only used for Public releases.
//
// The sensitivity clipBound is that of adding or removing one node's
// contribution (its clipped update against none), the convention of
// user-level DP-FedAvg and of the accountant's subsampling analysis.
//
// A Public release also drops what the noise does not cover: the quality
// metrics (daf.quality) are removed and the sample count set to 1, since
// both are computed from the node's data and would otherwise be
// published exactly. Aggregators then weigh Public updates equally.
func PrepareRelease(u *adapter.Update, tier Tier, epsilon, delta, clipBound float64, rng *rand.Rand) (ReleaseReport, error) {
	if u == nil {
		return ReleaseReport{}, fmt.Errorf("%w: no update to release", ErrBadParameter)
	}
	if math.IsNaN(clipBound) || math.IsInf(clipBound, 0) || clipBound <= 0 {
		return ReleaseReport{}, fmt.Errorf("%w: clip_bound = %v (want a finite value > 0)", ErrBadParameter, clipBound)
	}
	switch tier {
	case Private:
		return ReleaseReport{}, fmt.Errorf("%w: tier private: private updates never leave the node", ErrScope)
	case Group, Tenant, Public:
	default:
		return ReleaseReport{}, fmt.Errorf("%w: unknown %v", ErrScope, tier)
	}
	if err := u.CheckFinite(); err != nil {
		return ReleaseReport{}, fmt.Errorf("release at tier %v: %w", tier, err)
	}
	var sigma float64
	if tier == Public {
		if rng == nil {
			return ReleaseReport{}, fmt.Errorf("%w: no random source for public-tier noise", ErrBadParameter)
		}
		s, err := AnalyticGaussianSigma(epsilon, delta, clipBound)
		if err != nil {
			return ReleaseReport{}, fmt.Errorf("release at tier public: %w", err)
		}
		// Noise this large would overflow float32 values; such an ε
		// releases nothing useful anyway.
		if s > math.MaxFloat32/64 {
			return ReleaseReport{}, fmt.Errorf("%w: epsilon = %v gives noise σ = %g, beyond float32 range", ErrBadParameter, epsilon, s)
		}
		sigma = s
	}
	rep := ReleaseReport{ClipFactor: Clip(u, clipBound)}
	if tier == Public {
		AddGaussianNoise(u, sigma, rng)
		rep.Sigma, rep.NoiseMultiplier, rep.Noised = sigma, sigma/clipBound, true
		u.Meta.Quality = nil
		u.Meta.Samples = 1
	}
	u.Meta.Tier = tier.String()
	return rep, nil
}

// AggregateSensitivity returns the L2 sensitivity, to adding or removing
// one node, of an aggregation strategy applied to updates clipped to
// clipBound, or ErrNoSensitivity when the strategy has no bound that makes
// noise on its output worthwhile. weights are the aggregation weights,
// fixed before the updates are seen (sample counts), normalised here.
//
// A weighted mean m = Σ wᵢuᵢ moves, when node k leaves, by
// wₖ·(uₖ - m'), where m' is the mean of the rest: at most 2·C·max wₖ —
// not C/n, which holds only for a sum whose count is public. Strategies
// whose weights depend on the updates themselves (quality_weighted,
// learned_attention) or whose output is chosen among the inputs (median,
// trimmed_mean, krum, multi_krum, geometric_median, centered_clip) give
// one node up to the whole output: no bound below 2C, so noising their
// output is refused and the Public tier noises each update locally
// instead.
func AggregateSensitivity(strategy string, clipBound float64, weights []float64) (float64, error) {
	if math.IsNaN(clipBound) || math.IsInf(clipBound, 0) || clipBound <= 0 {
		return 0, fmt.Errorf("%w: clip_bound = %v (want a finite value > 0)", ErrBadParameter, clipBound)
	}
	switch strategy {
	case "weighted_average", "mean":
	case "quality_weighted", "learned_attention", "median", "trimmed_mean", "krum", "multi_krum", "geometric_median", "centered_clip", "daf":
		return 0, fmt.Errorf("%w: strategy %q: one node can move its output by up to 2·clip_bound, so noise on the aggregate would not be DP; noise each update before release (Public tier)", ErrNoSensitivity, strategy)
	default:
		return 0, fmt.Errorf("%w: unknown strategy %q", ErrNoSensitivity, strategy)
	}
	if len(weights) == 0 {
		return 0, fmt.Errorf("%w: strategy %q: no weights", ErrBadParameter, strategy)
	}
	var sum, max float64
	for i, w := range weights {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return 0, fmt.Errorf("%w: weight #%d = %v (want a finite value ≥ 0)", ErrBadParameter, i+1, w)
		}
		sum += w
		if w > max {
			max = w
		}
	}
	if !(sum > 0) {
		return 0, fmt.Errorf("%w: weights sum to %v", ErrBadParameter, sum)
	}
	return 2 * clipBound * max / sum, nil
}

// NoiseAggregate adds Gaussian noise to an aggregate, calibrated by the
// analytic Gaussian mechanism for (epsilon, delta) at the strategy's
// sensitivity (AggregateSensitivity); strategies without one are refused.
// This protects the aggregate from whoever receives it, not the inputs
// from the peers that saw them: for that, see PrepareRelease.
func NoiseAggregate(agg *adapter.Update, strategy string, clipBound float64, weights []float64, epsilon, delta float64, rng *rand.Rand) (ReleaseReport, error) {
	if agg == nil || rng == nil {
		return ReleaseReport{}, fmt.Errorf("%w: need an aggregate and a random source", ErrBadParameter)
	}
	sens, err := AggregateSensitivity(strategy, clipBound, weights)
	if err != nil {
		return ReleaseReport{}, err
	}
	if err := agg.CheckFinite(); err != nil {
		return ReleaseReport{}, fmt.Errorf("aggregate: %w", err)
	}
	sigma, err := AnalyticGaussianSigma(epsilon, delta, sens)
	if err != nil {
		return ReleaseReport{}, err
	}
	if sigma > math.MaxFloat32/64 {
		return ReleaseReport{}, fmt.Errorf("%w: epsilon = %v gives noise σ = %g, beyond float32 range", ErrBadParameter, epsilon, sigma)
	}
	AddGaussianNoise(agg, sigma, rng)
	return ReleaseReport{ClipFactor: 1, Sigma: sigma, NoiseMultiplier: sigma / sens, Noised: true}, nil
}
