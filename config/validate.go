package config

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/dafnet/daf/privacy"
)

// MaxTimestep is the top of the diffusion timestep axis: group ranges are
// [start, end) pieces of [0, MaxTimestep], and t = MaxTimestep itself belongs
// to the group whose range ends there.
const MaxTimestep = 1000

// Validate checks every key and the rules between keys, and returns nil or a
// *Problems listing all of them (it wraps ErrInvalid).
func (c Config) Validate() error {
	var p Problems
	c.validate(&p)
	return p.orNil()
}

func (c Config) validate(p *Problems) {
	f := c.Federation
	const fed = "federation."

	if f.RoundIntervalSecs < 1 {
		p.add(fed+"round_interval_secs", "must be at least 1 second, got %d", f.RoundIntervalSecs)
	}
	tooLong(p, fed+"round_interval_secs", f.RoundIntervalSecs)
	if f.MinNodesForAggregation < 1 {
		p.add(fed+"min_nodes_for_aggregation", "must be at least 1, got %d", f.MinNodesForAggregation)
	}
	if f.MaxNodesPerRound < f.MinNodesForAggregation {
		p.add(fed+"max_nodes_per_round", "must be at least min_nodes_for_aggregation (%d), got %d", f.MinNodesForAggregation, f.MaxNodesPerRound)
	}
	if f.PeerTimeoutSecs < 1 {
		p.add(fed+"peer_timeout_secs", "must be at least 1 second, got %d", f.PeerTimeoutSecs)
	}
	tooLong(p, fed+"peer_timeout_secs", f.PeerTimeoutSecs)

	tier, err := privacy.ParseTier(f.Node.Tier)
	if err != nil {
		p.add(fed+"node.tier", "%v", err)
	} else if (tier == privacy.Group || tier == privacy.Tenant) && strings.TrimSpace(f.Node.Scope) == "" {
		p.add(fed+"node.scope", "tier %s needs a scope (the %s id its updates are shared within)", tier, tier)
	}

	if f.Gossip.FanOut < 1 {
		p.add(fed+"gossip.fan_out", "must be at least 1, got %d", f.Gossip.FanOut)
	}
	if f.Gossip.MaxHops < 1 {
		p.add(fed+"gossip.max_hops", "must be at least 1, got %d", f.Gossip.MaxHops)
	}
	if f.Gossip.PropagationTimeoutSecs < 0 {
		p.add(fed+"gossip.propagation_timeout_secs", "must not be negative, got %d", f.Gossip.PropagationTimeoutSecs)
	}
	tooLong(p, fed+"gossip.propagation_timeout_secs", f.Gossip.PropagationTimeoutSecs)

	c.validateDAF(p)

	sec := f.Security
	if finite(p, fed+"security.max_magnitude_multiplier", sec.MaxMagnitudeMultiplier) && sec.MaxMagnitudeMultiplier <= 0 {
		p.add(fed+"security.max_magnitude_multiplier", "must be > 0, got %v", sec.MaxMagnitudeMultiplier)
	}
	if sec.DirectionFlipThreshold < 1 {
		p.add(fed+"security.direction_flip_threshold", "must be at least 1, got %d", sec.DirectionFlipThreshold)
	}

	pr := f.Privacy
	if finite(p, fed+"privacy.epsilon", pr.Epsilon) && pr.Epsilon <= 0 {
		p.add(fed+"privacy.epsilon", "must be > 0, got %v", pr.Epsilon)
	}
	if finite(p, fed+"privacy.delta", pr.Delta) && (pr.Delta <= 0 || pr.Delta >= 1) {
		p.add(fed+"privacy.delta", "must be in (0, 1), got %v", pr.Delta)
	}
	if finite(p, fed+"privacy.clip_bound", pr.ClipBound) && pr.ClipBound <= 0 {
		p.add(fed+"privacy.clip_bound", "must be > 0, got %v", pr.ClipBound)
	}
	if pr.MinKAnonymity < 1 {
		p.add(fed+"privacy.min_k_anonymity", "must be at least 1, got %d", pr.MinKAnonymity)
	}
	if finite(p, fed+"privacy.epsilon_budget", pr.EpsilonBudget) && pr.EpsilonBudget < 0 {
		p.add(fed+"privacy.epsilon_budget", "must be >= 0 (0 = account and report only), got %v", pr.EpsilonBudget)
	}

	cm := f.Compression
	if finite(p, fed+"compression.sparsity_threshold", cm.SparsityThreshold) && (cm.SparsityThreshold < 0 || cm.SparsityThreshold > 1) {
		p.add(fed+"compression.sparsity_threshold", "must be in [0, 1], got %v", cm.SparsityThreshold)
	}
	if cm.QuantizationBits < 1 || cm.QuantizationBits > 16 {
		p.add(fed+"compression.quantization_bits", "must be in 1..16, got %d", cm.QuantizationBits)
	}
}

// MaxSeconds is the longest interval a *_secs key may hold: the most whole
// seconds a time.Duration can represent (about 292 years). Beyond it,
// converting to a Duration overflows into a negative interval.
const MaxSeconds = math.MaxInt64 / int64(time.Second)

func tooLong(p *Problems, key string, secs int64) {
	if secs > MaxSeconds {
		p.add(key, "must be at most %d seconds (about 292 years), got %d", MaxSeconds, secs)
	}
}

// finite records a problem for NaN or ±Inf and reports whether v is usable
// for the range checks that follow (which NaN would silently pass).
func finite(p *Problems, key string, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		p.add(key, "must be a finite number, got %v", v)
		return false
	}
	return true
}

// namedRange is one timestep group's [start, end) with the key it came from.
type namedRange struct {
	key        string
	start, end int
}

func (d DAF) ranges() []namedRange {
	const k = "federation.daf."
	return []namedRange{
		{k + "coarse_range", d.CoarseRange[0], d.CoarseRange[1]},
		{k + "domain_range", d.DomainRange[0], d.DomainRange[1]},
		{k + "fine_range", d.FineRange[0], d.FineRange[1]},
	}
}

func (c Config) validateDAF(p *Problems) {
	d := c.Federation.DAF
	const k = "federation.daf."
	for _, s := range []struct{ key, name string }{
		{k + "coarse_strategy", d.CoarseStrategy},
		{k + "domain_strategy", d.DomainStrategy},
		{k + "fine_strategy", d.FineStrategy},
	} {
		if !IsStrategy(s.name) {
			p.add(s.key, "unknown strategy %q (want one of %s)", s.name, strings.Join(StrategyNames, ", "))
		}
	}
	if finite(p, k+"trim_fraction", d.TrimFraction) && (d.TrimFraction < 0 || d.TrimFraction >= 0.5) {
		p.add(k+"trim_fraction", "must be in [0, 0.5) (the fraction cut from each end), got %v", d.TrimFraction)
	}
	checkPartition(p, d.ranges())
}

// checkPartition reports ranges that are empty, reversed or outside
// [0, MaxTimestep], every overlapping pair, and every stretch of t that no
// range covers, naming the keys on both sides of it.
func checkPartition(p *Problems, ranges []namedRange) {
	var usable []namedRange
	for _, r := range ranges {
		if r.start >= r.end {
			p.add(r.key, "[%d, %d] is empty: start must be below end", r.start, r.end)
			continue
		}
		if r.start < 0 || r.end > MaxTimestep {
			p.add(r.key, "[%d, %d] falls outside [0, %d]", r.start, r.end, MaxTimestep)
			// Clipped, it still takes part in the overlap and gap checks, so
			// one mistake is not reported again as a gap.
			r.start, r.end = max(r.start, 0), min(r.end, MaxTimestep)
			if r.start >= r.end {
				continue
			}
		}
		usable = append(usable, r)
	}
	for i := range usable {
		for j := i + 1; j < len(usable); j++ {
			a, b := usable[i], usable[j]
			lo, hi := max(a.start, b.start), min(a.end, b.end)
			if lo < hi {
				p.add(a.key, "overlaps %s on t in [%d, %d)", b.key, lo, hi)
			}
		}
	}
	sort.SliceStable(usable, func(i, j int) bool { return usable[i].start < usable[j].start })
	covered, lastKey := 0, ""
	for _, r := range usable {
		if r.start > covered {
			p.add(r.key, "gap: t in [%d, %d) belongs to no group (%s)", covered, r.start, gapSides(lastKey, r.key))
		}
		if r.end > covered {
			covered, lastKey = r.end, r.key
		}
	}
	if len(usable) > 0 && covered < MaxTimestep {
		p.add(lastKey, "gap: t in [%d, %d] belongs to no group (%s)", covered, MaxTimestep, gapSides(lastKey, ""))
	}
}

func gapSides(below, above string) string {
	switch {
	case below == "":
		return fmt.Sprintf("between t=0 and %s", above)
	case above == "":
		return fmt.Sprintf("between %s and t=%d", below, MaxTimestep)
	default:
		return fmt.Sprintf("between %s and %s", below, above)
	}
}
