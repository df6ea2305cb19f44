package aggregate

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dafnet/daf/adapter"
)

// Metadata keys (daf.*) that an aggregate carries besides the standard ones.
const (
	MetaStrategy          = "daf.strategy"           // strategy name, or "daf"
	MetaGroupStrategies   = "daf.group_strategies"   // JSON {group: strategy}
	MetaLoRAMode          = "daf.lora_mode"          // factor | exact | svd
	MetaContributors      = "daf.contributors"       // JSON [node, …]
	MetaGroupContributors = "daf.group_contributors" // JSON {group: count}
	MetaSVDError          = "daf.svd_rel_error"      // relative Frobenius truncation error
)

// Aggregate runs one named strategy over all groups of the updates (n ≥ 1).
// Each group is aggregated from the updates that carry it. One update is
// returned as it is (with aggregate metadata). See the package doc for the
// strategies and the LoRA modes.
func Aggregate(strategy string, updates []*adapter.Update, opts Options) (*adapter.Update, error) {
	if _, err := lookupStrategy(strategy); err != nil {
		return nil, err
	}
	out, _, err := aggregateGroups(updates, func(string) string { return strategy }, strategy, opts)
	return out, err
}

// AggregateReport is Aggregate that also returns the per-group
// contributors and strategies and the truncation error.
func AggregateReport(strategy string, updates []*adapter.Update, opts Options) (*adapter.Update, *Report, error) {
	if _, err := lookupStrategy(strategy); err != nil {
		return nil, nil, err
	}
	return aggregateGroups(updates, func(string) string { return strategy }, strategy, opts)
}

// Report describes an aggregation beyond its tensors.
type Report struct {
	// Contributors is the number of updates aggregated per group.
	Contributors map[string]int
	// Strategies is the strategy used per group.
	Strategies map[string]string
	// SVDRelError is ‖ΔW − ΔW_R‖_F / ‖ΔW‖_F over all modules (SVD mode, and
	// the tolerance-bounded error of exact re-factorisations).
	SVDRelError float64
	// Rank and LoraAlpha of the output's LoRA factors (product modes); in
	// factor mode those of the first update.
	Rank      int
	LoraAlpha float64
}

// aggregateGroups is the shared driver of Aggregate and the Engine.
func aggregateGroups(updates []*adapter.Update, strategyOf func(group string) string, label string, opts Options) (*adapter.Update, *Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, nil, err
	}
	if err := checkUpdates(updates, opts.workers(), !opts.InputsFinite); err != nil {
		return nil, nil, err
	}
	if err := checkSampleTotal(updates); err != nil {
		return nil, nil, err
	}
	product := opts.LoRAMode != Factor
	if product {
		for i, u := range updates {
			if kindOf(u) != adapter.KindAdapter {
				return nil, nil, fmt.Errorf("%w: %s mode multiplies B·A, but node %q is daf.kind=%s (pass adapters, or deltas with their base)",
					ErrNeedFactors, opts.LoRAMode, nodeName(u, i), kindOf(u))
			}
		}
		if opts.LoRAMode == SVD && opts.Rank == 0 {
			opts.Rank = maxRank(updates)
		}
	}
	names, byGroup := groupMembers(updates)
	rep := &Report{Contributors: map[string]int{}, Strategies: map[string]string{}}
	out := outputShell(updates, label, opts)
	for _, g := range names {
		rep.Contributors[g] = len(byGroup[g])
		rep.Strategies[g] = strategyOf(g)
	}
	// One update is its own aggregate, except that svd mode still
	// re-factorises it to the rank asked for.
	if len(updates) == 1 && opts.LoRAMode != SVD {
		if product {
			for _, g := range names {
				if _, _, err := splitModules(g, updates[0].Keys(g)); err != nil {
					return nil, nil, err
				}
			}
		}
		for g, ts := range updates[0].Groups {
			for k, t := range ts {
				out.Set(g, k, t.Clone())
			}
		}
		rep.Rank, rep.LoraAlpha = out.Meta.Rank, out.Meta.LoraAlpha
		return out, rep, annotate(out, rep, updates)
	}
	var products []*productGroup
	var err2, norm2 float64
	for _, g := range names {
		ms := byGroup[g]
		spec, err := lookupStrategy(strategyOf(g))
		if err != nil {
			return nil, nil, fmt.Errorf("group %s: %w", g, err)
		}
		keys, err := checkSameKeys(g, ms)
		if err != nil {
			return nil, nil, err
		}
		if !product {
			ts, err := aggregateElementwise(spec, g, keys, ms, updates[0], opts)
			if err != nil {
				return nil, nil, err
			}
			for k, t := range ts {
				out.Set(g, k, t)
			}
			continue
		}
		pg, err := aggregateProduct(spec, g, keys, ms, opts)
		if err != nil {
			return nil, nil, err
		}
		for k, t := range pg.tensors {
			out.Set(g, k, t)
		}
		products = append(products, pg)
		err2 += pg.err2
		norm2 += pg.norm2
	}
	if product {
		foldScale(out, products)
		if norm2 > 0 {
			rep.SVDRelError = math.Sqrt(err2 / norm2)
		}
	}
	rep.Rank, rep.LoraAlpha = out.Meta.Rank, out.Meta.LoraAlpha
	if firstNonFinite([]*adapter.Update{out}, opts.workers()) >= 0 {
		return nil, nil, fmt.Errorf("aggregate of %d updates: %w", len(updates), out.CheckFinite())
	}
	return out, rep, annotate(out, rep, updates)
}

// foldScale gives the output one lora_alpha for all modules: the largest
// module rank, with each B multiplied by r/α so that (α/r)·B·A is still
// the aggregate. With one rank everywhere (the usual case) α = r and the
// factors are left as they are.
func foldScale(out *adapter.Update, products []*productGroup) {
	maxR, uniform, seen := 0, true, false
	for _, pg := range products {
		for _, r := range pg.ranks {
			if seen && r != maxR && uniform {
				uniform = false
			}
			maxR, seen = max(maxR, r), true
		}
	}
	if !seen {
		return
	}
	alpha := float64(max(maxR, 1))
	out.Meta.LoraAlpha = alpha
	out.Meta.Rank = 0
	if uniform {
		out.Meta.Rank = maxR
	}
	for _, pg := range products {
		for i, mod := range pg.modules {
			r := pg.ranks[i]
			if r == 0 || float64(r) == alpha {
				continue
			}
			f := float32(float64(r) / alpha)
			b := pg.tensors[mod.keyB].Data
			for e := range b {
				b[e] *= f
			}
		}
	}
}

// maxRank is the largest lora_A row count of any update, the default SVD
// target.
func maxRank(updates []*adapter.Update) int {
	r := 0
	for _, u := range updates {
		for _, ts := range u.Groups {
			for k, t := range ts {
				if _, f, ok := adapter.SplitLoRAKey(k); ok && f == "A" && len(t.Shape) == 2 {
					r = max(r, t.Shape[0])
				}
			}
		}
	}
	return r
}

// tierOrder ranks daf.tier values from closed to open (privacy.Tier's
// order; privacy imports adapter and may come to use aggregates, so the
// four names are repeated here rather than imported).
var tierOrder = map[string]int{"private": 0, "group": 1, "tenant": 2, "public": 3}

// outputShell is the aggregate's metadata before its tensors: the inputs'
// kind and groups, the sum of their samples, the latest round, the most
// closed tier among them (an aggregate is as private as its most private
// input), their scope when they share one, and the first update's
// non-daf keys (PEFT configuration such as fan_in_fan_out).
func outputShell(updates []*adapter.Update, label string, opts Options) *adapter.Update {
	first := updates[0]
	out := adapter.New()
	out.Meta.Kind = kindOf(first)
	out.Meta.Groups = append([]adapter.GroupRange(nil), first.Meta.Groups...)
	out.Meta.Rank, out.Meta.LoraAlpha = first.Meta.Rank, first.Meta.LoraAlpha
	out.Meta.FanInFanOut = first.Meta.FanInFanOut
	out.Meta.Samples = 0
	out.Meta.Tier = first.Meta.Tier
	out.Meta.Scope = first.Meta.Scope
	for _, u := range updates {
		out.Meta.Samples += u.Meta.Samples
		out.Meta.Round = max(out.Meta.Round, u.Meta.Round)
		if t, ok := tierOrder[u.Meta.Tier]; ok && t < tierOrder[out.Meta.Tier] {
			out.Meta.Tier = u.Meta.Tier
		}
		if u.Meta.Scope != out.Meta.Scope {
			out.Meta.Scope = ""
		}
	}
	out.Meta.Extra = map[string]string{}
	for k, v := range first.Meta.Extra {
		if !strings.HasPrefix(k, "daf.") {
			out.Meta.Extra[k] = v
		}
	}
	out.Meta.Extra[MetaStrategy] = label
	out.Meta.Extra[MetaLoRAMode] = opts.LoRAMode.String()
	return out
}

// annotate records contributors, per-group counts and strategies, and the
// truncation error in the output's metadata.
func annotate(out *adapter.Update, rep *Report, updates []*adapter.Update) error {
	nodes := make([]string, len(updates))
	for i, u := range updates {
		nodes[i] = nodeName(u, i)
	}
	for key, v := range map[string]any{MetaContributors: nodes, MetaGroupContributors: rep.Contributors, MetaGroupStrategies: rep.Strategies} {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", key, err)
		}
		out.Meta.Extra[key] = string(b)
	}
	if out.Meta.Extra[MetaLoRAMode] != Factor.String() {
		out.Meta.Extra[MetaSVDError] = strconv.FormatFloat(rep.SVDRelError, 'g', 6, 64)
	}
	return nil
}

// checkSampleTotal refuses sample counts whose sum overflows: each is a
// finite number, but the aggregate records their sum as its daf.samples,
// and +Inf is no sample count (no writer accepts it). Refused here, the
// error comes before the work rather than from writing the result.
func checkSampleTotal(updates []*adapter.Update) error {
	var total float64
	for _, u := range updates {
		total += u.Meta.Samples
	}
	if math.IsInf(total, 0) {
		return fmt.Errorf("%w: the daf.samples of the %d updates sum to %v", ErrBadOption, len(updates), total)
	}
	return nil
}
