package defense

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/dafnet/daf/config"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFromFederation(t *testing.T) {
	fc := config.Default()
	got := ConfigFromFederation(fc)
	if !got.Enabled || got.MaxMagnitudeMultiplier != 10 || got.DirectionFlipThreshold != 5 || got.SybilMinCluster != 4 || got.SybilSimilarity != 0.99 {
		t.Errorf("from the shipped defaults: %+v", got)
	}
	fc.Federation.Security = config.Security{ByzantineDetection: false, MaxMagnitudeMultiplier: 4, DirectionFlipThreshold: 2}
	got = ConfigFromFederation(fc)
	if got.Enabled || got.MaxMagnitudeMultiplier != 4 || got.DirectionFlipThreshold != 2 {
		t.Errorf("keys not taken: %+v", got)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := Config{
		MaxMagnitudeMultiplier: math.Inf(1),
		DirectionFlipThreshold: FlipWindow,
		WarmupUpdates:          -1,
		RangeK:                 math.NaN(),
		SybilSimilarity:        1.5,
		SybilMinCluster:        1,
	}
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("%v", err)
	}
	for _, field := range []string{"max_magnitude_multiplier", "direction_flip_threshold", "WarmupUpdates", "RangeK", "SybilSimilarity", "SybilMinCluster"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s: %v", field, err)
		}
	}
}
