package defense

import (
	"errors"
	"fmt"
	"math"

	"github.com/dafnet/daf/config"
)

// Config drives the Byzantine detector and Sybil clustering.
type Config struct {
	// Enabled is federation.security.byzantine_detection. When false the
	// detector accepts every finite update without keeping statistics;
	// non-finite updates are still rejected, because no aggregator can use
	// them.
	Enabled bool
	// MaxMagnitudeMultiplier (Check 1): an update whose joint L2 norm is
	// above this multiple of the node's historical mean norm is rejected.
	// federation.security.max_magnitude_multiplier; seed value 10.
	MaxMagnitudeMultiplier float64
	// DirectionFlipThreshold (Check 2): more flips than this within the
	// node's last FlipWindow accepted updates is a rejection.
	// federation.security.direction_flip_threshold; seed value 5.
	DirectionFlipThreshold int
	// WarmupUpdates is how many accepted updates a node needs before its
	// own mean norm is the reference of Check 1; until then the population
	// of established nodes is (see doc.go, "New nodes"). Suggested 3.
	WarmupUpdates int
	// RangeK is k in the Check 3 range median ± k·MAD, taken over the log
	// of the group norms of the other nodes (MAD scaled by 1.4826 so that k
	// reads as standard deviations for log-normal norms). Default 4.
	RangeK float64
	// SybilSimilarity is the cosine above which two updates are linked for
	// Sybil clustering. Seed value 0.99.
	SybilSimilarity float64
	// SybilMinCluster is the smallest linked cluster treated as Sybil
	// clones. The seed flags clusters of "more than 3", so 4.
	SybilMinCluster int
}

// DefaultConfig returns the seed's thresholds plus our suggested values for
// the keys the seed leaves open.
func DefaultConfig() Config {
	return Config{
		Enabled:                true,
		MaxMagnitudeMultiplier: 10,
		DirectionFlipThreshold: 5,
		WarmupUpdates:          3,
		RangeK:                 4,
		SybilSimilarity:        0.99,
		SybilMinCluster:        4,
	}
}

// ConfigFromFederation takes byzantine_detection, max_magnitude_multiplier
// and direction_flip_threshold from federation.toml and the defaults for
// the rest.
func ConfigFromFederation(c config.Config) Config {
	d := DefaultConfig()
	s := c.Federation.Security
	d.Enabled = s.ByzantineDetection
	d.MaxMagnitudeMultiplier = s.MaxMagnitudeMultiplier
	d.DirectionFlipThreshold = s.DirectionFlipThreshold
	return d
}

// Validate reports every out-of-range field at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if !finite(c.MaxMagnitudeMultiplier) || c.MaxMagnitudeMultiplier <= 1 {
		bad("max_magnitude_multiplier", "= %v, want a finite value > 1", c.MaxMagnitudeMultiplier)
	}
	if c.DirectionFlipThreshold < 0 || c.DirectionFlipThreshold >= FlipWindow {
		bad("direction_flip_threshold", "= %d, want 0 ≤ threshold < %d (the flip window)", c.DirectionFlipThreshold, FlipWindow)
	}
	if c.WarmupUpdates < 0 {
		bad("WarmupUpdates", "= %d, want ≥ 0", c.WarmupUpdates)
	}
	if !finite(c.RangeK) || c.RangeK <= 0 {
		bad("RangeK", "= %v, want a finite value > 0", c.RangeK)
	}
	if !finite(c.SybilSimilarity) || c.SybilSimilarity <= 0 || c.SybilSimilarity > 1 {
		bad("SybilSimilarity", "= %v, want 0 < similarity ≤ 1", c.SybilSimilarity)
	}
	if c.SybilMinCluster < 2 {
		bad("SybilMinCluster", "= %d, want ≥ 2", c.SybilMinCluster)
	}
	return errors.Join(errs...)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
