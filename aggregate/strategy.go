package aggregate

import (
	"fmt"
	"sort"
)

// strategySpec describes one named strategy: either coordinate-wise (an
// order statistic per parameter) or a combination Σ c_i x_i of whole
// updates whose coefficients come from metadata and/or the Gram matrix.
type strategySpec struct {
	coordinate bool
	median     bool // coordinate: median instead of trimmed mean
	coef       coefficientsFunc
}

var strategies = map[string]strategySpec{
	"weighted_average":  {coef: weightedAverageCoefficients},
	"quality_weighted":  {coef: qualityWeightedCoefficients},
	"trimmed_mean":      {coordinate: true},
	"learned_attention": {coef: learnedAttentionCoefficients},
	"median":            {coordinate: true, median: true},
	"krum":              {coef: krumCoefficients},
	"multi_krum":        {coef: multiKrumCoefficients},
	"geometric_median":  {coef: geometricMedianCoefficients},
	"centered_clip":     {coef: centeredClipCoefficients},
}

// EngineStrategy is the name under which the command line and
// federation.toml select the per-group DAF engine rather than one strategy.
const EngineStrategy = "daf"

// Strategies lists the names Aggregate accepts, sorted.
func Strategies() []string {
	names := make([]string, 0, len(strategies))
	for n := range strategies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookupStrategy(name string) (strategySpec, error) {
	s, ok := strategies[name]
	if !ok {
		if name == EngineStrategy {
			return s, fmt.Errorf("%w: %q runs per-group strategies: use NewEngine", ErrUnknownStrategy, name)
		}
		return s, fmt.Errorf("%w: %q (want one of %v)", ErrUnknownStrategy, name, Strategies())
	}
	return s, nil
}
