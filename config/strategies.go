package config

import "slices"

// StrategyNames are the aggregation strategies a timestep group may name in
// [federation.daf] (coarse_strategy, domain_strategy, fine_strategy). The
// aggregate package implements each of them under exactly this name.
var StrategyNames = []string{
	"weighted_average",
	"quality_weighted",
	"trimmed_mean",
	"learned_attention",
	"median",
	"krum",
	"multi_krum",
	"geometric_median",
	"centered_clip",
}

// IsStrategy reports whether name is one of StrategyNames.
func IsStrategy(name string) bool { return slices.Contains(StrategyNames, name) }
