package schedule

import (
	"fmt"
	"math"
	"sort"
)

// NoiseSchedule maps a timestep t in [0, MaxT] to the mask rate of a masked
// diffusion model: the probability that a token is masked at t. Mask rates
// are in [0, 1], 0 at t = 0 (clean text), 1 at t = MaxT (all masked), and
// never decrease with t. A t outside [0, MaxT] is clamped.
type NoiseSchedule interface {
	MaskRate(t int) float64
}

// Linear masks in proportion to t: rate = t / MaxT. It spends equal time at
// every noise level.
type Linear struct{}

func (Linear) MaskRate(t int) float64 { return float64(clampT(t)) / MaxT }

// Cosine is the cosine schedule of Nichol and Dhariwal (2021) read as a mask
// rate: the fraction of tokens kept is ᾱ(t) = f(t)/f(0) with
// f(t) = cos²(π/2 · (t/MaxT + s)/(1 + s)), s = 0.008, and the mask rate is
// 1 − ᾱ(t). Compared with Linear it changes slowly near both ends and fast
// in the middle (rate 0.3 at t = 365, 0.7 at t = 629), so a middle group cut
// at fixed mask rates spans fewer timesteps than under Linear.
type Cosine struct{}

const cosineOffset = 0.008

func (Cosine) MaskRate(t int) float64 {
	f := func(x float64) float64 {
		c := math.Cos(math.Pi / 2 * (x + cosineOffset) / (1 + cosineOffset))
		return c * c
	}
	keep := f(float64(clampT(t))/MaxT) / f(0)
	// cos(π/2) is 6e-17 rather than 0: pin the ends so the documented
	// rates hold exactly.
	return math.Min(1, math.Max(0, 1-keep))
}

func clampT(t int) int { return min(max(t, 0), MaxT) }

// GroupsFromNoiseThresholds cuts [0, MaxT] where the schedule's mask rate
// crosses each threshold: the seed's "noise schedule semantic grouping",
// where groups follow noise levels rather than fixed t. names run from the
// noisiest group to the cleanest and there must be one more name than
// thresholds (in (0, 1), any order, distinct). A group holds the t whose
// mask rate is at least the threshold below it and under the one above it.
//
// Roles follow position: the noisiest group is CoarseStructure, the
// cleanest FineRefinement, any between DomainPatterns; each group gets the
// seed's strategy for its role (weighted_average, quality_weighted,
// trimmed_mean). Groups come back noisiest first, like FromConfig.
func GroupsFromNoiseThresholds(s NoiseSchedule, thresholds []float64, names []string) ([]Group, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no noise schedule", ErrGroups)
	}
	if len(thresholds) == 0 {
		return nil, fmt.Errorf("%w: need at least one threshold", ErrGroups)
	}
	if len(names) != len(thresholds)+1 {
		return nil, fmt.Errorf("%w: %d thresholds make %d groups, got %d names", ErrGroups, len(thresholds), len(thresholds)+1, len(names))
	}
	cuts := append([]float64(nil), thresholds...)
	for _, c := range cuts {
		if !(c > 0 && c < 1) {
			return nil, fmt.Errorf("%w: threshold %v is not a mask rate in (0, 1)", ErrGroups, c)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(cuts)))

	groups := make([]Group, len(names))
	end := MaxT
	for i, name := range names {
		start := 0
		if i < len(cuts) {
			start = firstTAtRate(s, cuts[i])
		}
		if start >= end {
			return nil, fmt.Errorf("%w: group %s is empty: no t between mask rates %v and %v under this schedule", ErrGroups, name, cutOrZero(cuts, i), cutOrOne(cuts, i-1))
		}
		role := DomainPatterns
		switch i {
		case 0:
			role = CoarseStructure
		case len(names) - 1:
			role = FineRefinement
		}
		groups[i] = Group{Name: name, Start: start, End: end, Role: role, Strategy: roleStrategy(role)}
		end = start
	}
	if err := CheckTiling(groups); err != nil {
		return nil, err
	}
	return groups, nil
}

func cutOrZero(cuts []float64, i int) float64 {
	if i < len(cuts) {
		return cuts[i]
	}
	return 0
}

func cutOrOne(cuts []float64, i int) float64 {
	if i >= 0 {
		return cuts[i]
	}
	return 1
}

// firstTAtRate is the smallest t with MaskRate(t) >= rate; MaxT+1 if none.
// Binary search is valid because mask rates never decrease with t.
func firstTAtRate(s NoiseSchedule, rate float64) int {
	return sort.Search(MaxT+1, func(t int) bool { return s.MaskRate(t) >= rate })
}

func roleStrategy(r Role) string {
	switch r {
	case CoarseStructure:
		return "weighted_average"
	case FineRefinement:
		return "trimmed_mean"
	default:
		return "quality_weighted"
	}
}
