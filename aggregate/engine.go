package aggregate

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/config"
)

// GroupStrategy names the strategy of one timestep group.
type GroupStrategy struct{ Group, Strategy string }

// EngineConfig configures the DAF engine of a node.
type EngineConfig struct {
	// Groups is the strategy per timestep group (federation.daf
	// coarse_strategy, domain_strategy, fine_strategy).
	Groups []GroupStrategy
	// DefaultStrategy aggregates groups not listed in Groups (for example
	// "all", the one group of a plain PEFT adapter); "" = weighted_average.
	DefaultStrategy string
	// MinNodes is min_nodes_for_aggregation: fewer updates, in total or in
	// any group that has updates, is ErrInsufficientNodes. 0 = 1.
	MinNodes int
	// MaxNodes is max_nodes_per_round; 0 = no limit. When more updates
	// arrive, the engine keeps the MaxNodes with the most samples, ties
	// broken by node id, so every node keeps the same set whatever the
	// order in which updates reached it.
	MaxNodes int
	// Options of the strategies (trim_fraction, temperature, LoRA mode...).
	// Options.Reference is ignored: the engine carries its own.
	Options Options
	// Filter is the privacy filter applied before anything else; it returns
	// false for an update that may not be aggregated here (wrong tier or
	// scope). nil accepts all.
	Filter func(*adapter.Update) bool
}

// seedStrategies are the seed's per-group strategies, used for a group
// whose strategy the config leaves empty.
var seedStrategies = map[string]string{"coarse": "weighted_average", "domain": "quality_weighted", "fine": "trimmed_mean"}

// EngineConfigFromConfig reads federation.toml's [federation] and
// [federation.daf] keys: the per-group strategies (seed defaults: coarse
// weighted_average, domain quality_weighted, fine trimmed_mean),
// trim_fraction, min_nodes_for_aggregation and max_nodes_per_round.
func EngineConfigFromConfig(c config.Config) EngineConfig {
	d := c.Federation.DAF
	pick := func(group, s string) GroupStrategy {
		if s == "" {
			s = seedStrategies[group]
		}
		return GroupStrategy{Group: group, Strategy: s}
	}
	return EngineConfig{
		Groups: []GroupStrategy{
			pick("coarse", d.CoarseStrategy),
			pick("domain", d.DomainStrategy),
			pick("fine", d.FineStrategy),
		},
		MinNodes: c.Federation.MinNodesForAggregation,
		MaxNodes: c.Federation.MaxNodesPerRound,
		Options:  Options{TrimFraction: d.TrimFraction},
	}
}

// Engine is the DAF aggregation engine of one node. It carries state between
// rounds: the previous aggregate, which learned_attention attends to. It is
// safe for concurrent use.
type Engine struct {
	cfg        EngineConfig
	strategies map[string]string
	mu         sync.Mutex
	reference  *adapter.Update
}

// NewEngine checks the configuration: known strategies, each group once,
// sane node bounds and options.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.DefaultStrategy == "" {
		cfg.DefaultStrategy = "weighted_average"
	}
	if _, err := lookupStrategy(cfg.DefaultStrategy); err != nil {
		return nil, fmt.Errorf("default strategy: %w", err)
	}
	e := &Engine{cfg: cfg, strategies: map[string]string{}}
	for _, g := range cfg.Groups {
		if _, dup := e.strategies[g.Group]; dup {
			return nil, fmt.Errorf("%w: group %s has two strategies", ErrBadOption, g.Group)
		}
		if _, err := lookupStrategy(g.Strategy); err != nil {
			return nil, fmt.Errorf("group %s: %w", g.Group, err)
		}
		e.strategies[g.Group] = g.Strategy
	}
	switch {
	case cfg.MinNodes < 0:
		return nil, fmt.Errorf("%w: min_nodes_for_aggregation %d is negative", ErrBadOption, cfg.MinNodes)
	case cfg.MaxNodes < 0:
		return nil, fmt.Errorf("%w: max_nodes_per_round %d is negative", ErrBadOption, cfg.MaxNodes)
	case cfg.MaxNodes > 0 && cfg.MaxNodes < cfg.MinNodes:
		return nil, fmt.Errorf("%w: max_nodes_per_round %d is below min_nodes_for_aggregation %d", ErrBadOption, cfg.MaxNodes, cfg.MinNodes)
	}
	if err := cfg.Options.Validate(); err != nil {
		return nil, err
	}
	e.cfg.Options.Reference = nil
	return e, nil
}

// StrategyOf is the strategy the engine runs on a group.
func (e *Engine) StrategyOf(group string) string {
	if s, ok := e.strategies[group]; ok {
		return s
	}
	return e.cfg.DefaultStrategy
}

// Reference is the learned_attention reference the next round will use
// (the previous aggregate), or nil; a daemon persists it across restarts.
func (e *Engine) Reference() *adapter.Update {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reference == nil {
		return nil
	}
	return e.reference.Clone()
}

// SetReference restores a persisted reference.
func (e *Engine) SetReference(u *adapter.Update) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u == nil {
		e.reference = nil
		return
	}
	e.reference = u.Clone()
}

// Result is one round's aggregate.
type Result struct {
	// Update is the aggregate; its Node is empty for the caller to set.
	Update *adapter.Update
	// Contributors is the number of updates aggregated per group.
	Contributors map[string]int
	// Kept lists the node ids used, in the order max_nodes_per_round ranks
	// them (most samples first, then by id).
	Kept []string
	// Filtered lists the nodes the privacy filter refused; Dropped those
	// beyond max_nodes_per_round.
	Filtered, Dropped []string
	// Report has the per-group strategies and the SVD truncation error.
	Report *Report
}

// Aggregate runs one round: privacy filter, duplicate check,
// max_nodes_per_round, min_nodes_for_aggregation (in total and per group
// that has updates), then each group's strategy. On success the aggregate
// becomes the next round's learned_attention reference.
func (e *Engine) Aggregate(updates []*adapter.Update) (*Result, error) {
	res := &Result{}
	var kept []*adapter.Update
	seen := map[string]bool{}
	for i, u := range updates {
		if u == nil {
			return nil, fmt.Errorf("%w: update #%d is nil", ErrMismatch, i+1)
		}
		name := nodeName(u, i)
		if e.cfg.Filter != nil && !e.cfg.Filter(u) {
			res.Filtered = append(res.Filtered, name)
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: node %q sent two updates", ErrDuplicateNode, name)
		}
		seen[name] = true
		kept = append(kept, u)
	}
	minNodes := max(e.cfg.MinNodes, 1)
	if len(kept) < minNodes {
		return nil, e.insufficient(kept, len(res.Filtered), minNodes)
	}
	names := make(map[*adapter.Update]string, len(kept))
	for i, u := range kept {
		names[u] = nodeName(u, i)
	}
	sort.SliceStable(kept, func(a, b int) bool {
		if kept[a].Meta.Samples != kept[b].Meta.Samples {
			return kept[a].Meta.Samples > kept[b].Meta.Samples
		}
		return names[kept[a]] < names[kept[b]]
	})
	if e.cfg.MaxNodes > 0 && len(kept) > e.cfg.MaxNodes {
		for _, u := range kept[e.cfg.MaxNodes:] {
			res.Dropped = append(res.Dropped, names[u])
		}
		kept = kept[:e.cfg.MaxNodes]
	}
	for _, u := range kept {
		res.Kept = append(res.Kept, names[u])
	}
	groups, byGroup := groupMembers(kept)
	for _, g := range groups {
		if len(byGroup[g]) < minNodes {
			return nil, e.insufficient(kept, len(res.Filtered), minNodes)
		}
	}
	opts := e.cfg.Options
	e.mu.Lock()
	opts.Reference = compatibleReference(e.reference, kept, opts.LoRAMode)
	e.mu.Unlock()
	out, rep, err := aggregateGroups(kept, e.StrategyOf, EngineStrategy, opts)
	if err != nil {
		return nil, err
	}
	res.Update, res.Contributors, res.Report = out, rep.Contributors, rep
	e.mu.Lock()
	e.reference = out.Clone()
	e.mu.Unlock()
	return res, nil
}

// insufficient is the ErrInsufficientNodes of a round: the first group (by
// name) short of min_nodes_for_aggregation with its count, or, when the
// privacy filter left nothing, every configured group at 0.
func (e *Engine) insufficient(kept []*adapter.Update, refused, minNodes int) error {
	nodes := func(c int) string {
		if c == 1 {
			return "1 node"
		}
		return fmt.Sprintf("%d nodes", c)
	}
	if len(kept) == 0 {
		names := make([]string, 0, len(e.cfg.Groups))
		for _, g := range e.cfg.Groups {
			names = append(names, g.Group)
		}
		sort.Strings(names)
		what := "every group has"
		if len(names) > 0 {
			what = "groups " + strings.Join(names, ", ") + " have"
		}
		return fmt.Errorf("%w: %s updates from 0 nodes (%d refused by the privacy filter), min_nodes_for_aggregation is %d",
			ErrInsufficientNodes, what, refused, minNodes)
	}
	groups, byGroup := groupMembers(kept)
	for _, g := range groups {
		if c := len(byGroup[g]); c < minNodes {
			return fmt.Errorf("%w: group %s has updates from %s (%d refused by the privacy filter), min_nodes_for_aggregation is %d",
				ErrInsufficientNodes, g, nodes(c), refused, minNodes)
		}
	}
	return fmt.Errorf("%w: %s after the privacy filter (%d refused), min_nodes_for_aggregation is %d",
		ErrInsufficientNodes, nodes(len(kept)), refused, minNodes)
}

// compatibleReference keeps the groups of the previous aggregate that can
// still serve as a reference: same tensor keys and, in factor mode, same
// shapes (product modes compare products, so ranks may differ). A group
// whose adapter changed shape falls back to the coordinate mean rather than
// failing every round from then on.
func compatibleReference(ref *adapter.Update, updates []*adapter.Update, mode LoRAMode) *adapter.Update {
	if ref == nil {
		return nil
	}
	out := &adapter.Update{Meta: ref.Meta, Groups: map[string]map[string]*adapter.Tensor{}}
	for g, ts := range ref.Groups {
		var sample map[string]*adapter.Tensor
		for _, u := range updates {
			if u.Groups[g] != nil {
				sample = u.Groups[g]
				break
			}
		}
		if sample == nil || len(sample) != len(ts) {
			continue
		}
		ok := true
		for k, t := range sample {
			rt := ts[k]
			if rt == nil {
				ok = false
				break
			}
			if !referenceTensorFits(k, rt, t, mode) {
				ok = false
				break
			}
		}
		if ok {
			out.Groups[g] = ts
		}
	}
	return out
}

// referenceTensorFits: a plain tensor (or any tensor in factor mode) must
// have the update's shape; a LoRA factor in a product mode only its outer
// dimension (in for lora_A, out for lora_B), since ranks may differ.
func referenceTensorFits(key string, ref, t *adapter.Tensor, mode LoRAMode) bool {
	_, factor, lora := adapter.SplitLoRAKey(key)
	if mode == Factor || !lora {
		return ref.SameShape(t)
	}
	if len(ref.Shape) != 2 || len(t.Shape) != 2 {
		return false
	}
	if factor == "A" {
		return ref.Shape[1] == t.Shape[1]
	}
	return ref.Shape[0] == t.Shape[0]
}
