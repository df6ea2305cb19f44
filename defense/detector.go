package defense

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/dafnet/daf/adapter"
)

// FlipCosine is Check 2's threshold: an update whose cosine with the node's
// reference direction is below it counts as a flip (the seed's −0.5).
const FlipCosine = -0.5

// SuspiciousWeight is the largest weight a Suspicious update keeps. An
// update whose group norm is above the Check 3 range is weighted down
// further, to hi/norm, so its weighted contribution stays inside the range.
const SuspiciousWeight = 0.5

// Detector is the seed's ByzantineDetector: three checks of an update
// against its source's history and against the other nodes. It is safe for
// concurrent use; calls are serialised.
type Detector struct {
	mu     sync.Mutex
	cfg    Config
	cfgErr error
	store  StatsStore
	pop    *population
}

// NewDetector returns a detector keeping per-node statistics in store. An
// invalid cfg or a nil store is reported by every Validate call.
func NewDetector(cfg Config, store StatsStore) *Detector {
	err := cfg.Validate()
	if store == nil {
		err = errors.Join(err, fmt.Errorf("%w: nil StatsStore", ErrInvalidConfig))
	}
	return &Detector{cfg: cfg, cfgErr: err, store: store, pop: newPopulation()}
}

// Config returns the configuration in effect.
func (d *Detector) Config() Config { return d.cfg }

// Prime loads the statistics of known nodes (e.g. the peer table after a
// restart) into the population reference, so Check 3 and the warm-up
// reference of Check 1 work from the first update after a restart instead
// of refilling as nodes are heard from.
func (d *Detector) Prime(nodes []string) error {
	if d.cfgErr != nil {
		return d.cfgErr
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range nodes {
		if _, err := d.loadLocked(n); err != nil {
			return err
		}
	}
	return nil
}

func (d *Detector) loadLocked(node string) (NodeStats, error) {
	s, ok, err := d.store.LoadStats(node)
	if err != nil {
		return NodeStats{}, fmt.Errorf("%w: load node %q: %w", ErrStore, node, err)
	}
	if !ok {
		return NodeStats{}, nil
	}
	if err := s.check(); err != nil {
		return NodeStats{}, fmt.Errorf("%w: node %q: %w", ErrCorruptStats, node, err)
	}
	if !d.pop.has(node) {
		d.pop.record(node, s, d.cfg.WarmupUpdates)
	}
	return s, nil
}

// Validate judges u, whose source is u.Meta.Node. The node's statistics
// are updated only when the verdict is Accepted. An error means the update
// could not be judged (nil update, no source, bad config, store failure,
// corrupt statistics); the caller must not aggregate it.
func (d *Detector) Validate(u *adapter.Update) (Verdict, error) {
	return d.ValidateFrom(u, nil)
}

// ValidateFrom judges u by its difference from base, u − base tensor by
// tensor (a tensor base lacks counts as it is), as Validate would judge
// that difference, without making a copy of it: how a node judges an
// adapter by what it changes in the node's own model. base nil is
// Validate. A tensor whose shape differs from base's is an error wrapping
// ErrShapeMismatch.
func (d *Detector) ValidateFrom(u, base *adapter.Update) (Verdict, error) {
	if d.cfgErr != nil {
		return Verdict{}, d.cfgErr
	}
	if u == nil {
		return Verdict{}, fmt.Errorf("%w: nil update", ErrBadUpdate)
	}
	node := u.Meta.Node
	if node == "" {
		return Verdict{}, fmt.Errorf("%w: update of round %d has no source node", ErrBadUpdate, u.Meta.Round)
	}
	sc, err := scanUpdate(u, base, d.cfg.Enabled)
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: %w", ErrBadUpdate, err)
	}
	if !sc.finite {
		return rejected(NonFinite, "node %q: %v", node, nonFiniteDetail(u, base)), nil
	}
	if sc.values == 0 {
		return rejected(EmptyUpdate, "node %q sent an update without values", node), nil
	}
	if !d.cfg.Enabled {
		return accepted(), nil
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	stats, err := d.loadLocked(node)
	if err != nil {
		return Verdict{}, err
	}

	// Check 1: magnitude against the node's own history, or the
	// population's while the node warms up.
	magnitude := sc.magnitude()
	if ref, what, ok := d.magnitudeReference(node, stats); ok {
		limit := d.cfg.MaxMagnitudeMultiplier * ref
		if magnitude > limit {
			return rejected(ExcessiveMagnitude, "node %q: norm %.4g > %g × %s %.4g",
				node, magnitude, d.cfg.MaxMagnitudeMultiplier, what, ref), nil
		}
	}

	// Check 2: direction flips against the node's reference direction.
	dir := sc.dir
	hasDir := normalize(dir)
	flip := false
	if hasDir && len(stats.Direction) == SketchDims {
		cos := dot(dir, stats.Direction)
		if cos < FlipCosine {
			flip = true
			if flips := stats.Flips() + 1; flips > d.cfg.DirectionFlipThreshold {
				return rejected(DirectionAnomaly, "node %q: cosine %.3f with its history is a flip, %d flips in its last %d accepted updates > %d",
					node, cos, flips, FlipWindow, d.cfg.DirectionFlipThreshold), nil
			}
		}
	}

	// Check 3: each timestep group's norm against the other nodes'.
	groupNorms := sc.groupNorms()
	if v, suspicious := d.checkGroupNorms(node, groupNorms); suspicious {
		return v, nil
	}

	d.learn(&stats, magnitude, dir, hasDir, flip, groupNorms)
	if err := d.store.SaveStats(node, stats); err != nil {
		return Verdict{}, fmt.Errorf("%w: save node %q: %w", ErrStore, node, err)
	}
	d.pop.record(node, stats, d.cfg.WarmupUpdates)
	return accepted(), nil
}

// nonFiniteDetail names the first non-finite value: the scan only knows
// that there is one, and the search for it runs on this rare path only.
func nonFiniteDetail(u, base *adapter.Update) error {
	if err := u.CheckFinite(); err != nil || base == nil {
		return err
	}
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			b, _ := deltaBase(base, u.Meta.Node, g, k, u.Groups[g][k])
			for i, v := range u.Groups[g][k].Data {
				if b != nil {
					v -= b[i]
				}
				if notFinite(math.Float32bits(v))&nonFiniteFlag != 0 {
					return fmt.Errorf("%w: difference from the model at %s/%s[%d] = %v", adapter.ErrNonFinite, g, k, i, v)
				}
			}
		}
	}
	return nil
}

// magnitudeReference picks Check 1's reference norm: the node's own mean
// once it has WarmupUpdates accepted updates; before that the median of the
// established nodes' means, or the node's own short history when no such
// population exists yet. A node's very first update in a federation with
// no established nodes has no reference and passes Check 1.
func (d *Detector) magnitudeReference(node string, s NodeStats) (float64, string, bool) {
	own := s.Accepted > 0 && s.MeanMagnitude > 0
	if own && s.Accepted >= uint64(d.cfg.WarmupUpdates) {
		return s.MeanMagnitude, "its historical mean", true
	}
	if ref, ok := d.pop.magnitudeReference(node); ok && ref > 0 {
		return ref, "the established nodes' median mean", true
	}
	if own {
		return s.MeanMagnitude, "its warm-up mean", true
	}
	return 0, "", false
}

func (d *Detector) checkGroupNorms(node string, norms map[string]float64) (Verdict, bool) {
	weight := 1.0
	var problems []string
	for _, g := range sortedKeys(norms) {
		lo, hi, ok := d.pop.normRange(g, node, d.cfg.RangeK)
		if !ok {
			continue
		}
		n := norms[g]
		switch {
		case n > hi:
			weight = min(weight, SuspiciousWeight, hi/n)
			problems = append(problems, fmt.Sprintf("%s norm %.4g above [%.4g, %.4g]", g, n, lo, hi))
		case n < lo:
			weight = min(weight, SuspiciousWeight)
			problems = append(problems, fmt.Sprintf("%s norm %.4g below [%.4g, %.4g]", g, n, lo, hi))
		}
	}
	if len(problems) == 0 {
		return Verdict{}, false
	}
	return Verdict{
		Outcome: Suspicious,
		Reason:  GroupNormOutOfRange,
		Detail:  fmt.Sprintf("node %q: %s", node, strings.Join(problems, "; ")),
		Weight:  weight,
	}, true
}

// learn folds an accepted update into the node's statistics. A flip is
// counted but does not move the reference direction: otherwise a node that
// keeps sending flipped updates would turn its own reference around after
// a few rounds and stop being counted.
func (d *Detector) learn(s *NodeStats, magnitude float64, dir []float64, hasDir, flip bool, groupNorms map[string]float64) {
	s.Accepted++
	n := float64(min(s.Accepted, magnitudeHorizon))
	s.MeanMagnitude += (magnitude - s.MeanMagnitude) / n
	if hasDir && !flip {
		if len(s.Direction) != SketchDims {
			s.Direction = dir
		} else {
			blended := make([]float64, SketchDims)
			for i := range blended {
				blended[i] = (1-directionBlend)*s.Direction[i] + directionBlend*dir[i]
			}
			if normalize(blended) {
				s.Direction = blended
			}
		}
	}
	s.FlipHistory <<= 1
	if flip {
		s.FlipHistory |= 1
	}
	s.GroupNorms = groupNorms
}

// groupNorms is the L2 norm of each timestep group of u.
func groupNorms(u *adapter.Update) map[string]float64 {
	s, _ := scanUpdate(u, nil, false)
	return s.groupNorms()
}
