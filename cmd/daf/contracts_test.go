package main

import (
	"slices"
	"testing"

	"github.com/dafnet/daf/aggregate"
	"github.com/dafnet/daf/config"
)

// federation.toml is validated against config.StrategyNames and run by the
// aggregate package: a name one accepts and the other refuses would pass
// `daf config check` and then fail at the first aggregation.
func TestConfigStrategiesAreTheAggregatorsStrategies(t *testing.T) {
	fromConfig := slices.Sorted(slices.Values(config.StrategyNames))
	if got := aggregate.Strategies(); !slices.Equal(fromConfig, got) {
		t.Fatalf("config.StrategyNames %v, aggregate.Strategies() %v", fromConfig, got)
	}
}
