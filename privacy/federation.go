package privacy

import (
	"fmt"
	"sort"

	"github.com/dafnet/daf/adapter"
)

// Aggregator combines the updates of one scope into one (a DAF engine, or
// any single strategy).
type Aggregator interface {
	Aggregate(updates []*adapter.Update) (*adapter.Update, error)
}

// AggregatorFunc adapts a function to Aggregator.
type AggregatorFunc func(updates []*adapter.Update) (*adapter.Update, error)

// Aggregate calls f.
func (f AggregatorFunc) Aggregate(updates []*adapter.Update) (*adapter.Update, error) {
	return f(updates)
}

// TieredFederation runs one aggregation per (tier, scope) the node belongs
// to (the seed's TieredFederation): updates are routed to the aggregation
// of their own scope and nowhere else, so data released to a group never
// mixes with a tenant's or the public's.
type TieredFederation struct {
	memberships []Scope
	aggregators map[Scope]Aggregator
}

// NewTieredFederation builds the per-scope aggregators. memberships are the
// node's scopes other than Private (a Private entry is accepted and
// ignored: every node has its private scope); newAggregator makes the
// aggregator of one scope.
func NewTieredFederation(memberships []Scope, newAggregator func(Scope) (Aggregator, error)) (*TieredFederation, error) {
	f := &TieredFederation{aggregators: map[Scope]Aggregator{}}
	for _, s := range memberships {
		s = s.Normalize()
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("membership %v: %w", s, err)
		}
		if s.Tier == Private {
			continue
		}
		if _, dup := f.aggregators[s]; dup {
			continue
		}
		agg, err := newAggregator(s)
		if err != nil {
			return nil, fmt.Errorf("aggregator for scope %v: %w", s, err)
		}
		if agg == nil {
			return nil, fmt.Errorf("%w: no aggregator for scope %v", ErrBadParameter, s)
		}
		f.memberships = append(f.memberships, s)
		f.aggregators[s] = agg
	}
	return f, nil
}

// Memberships returns the node's non-private scopes in the order given.
func (f *TieredFederation) Memberships() []Scope { return append([]Scope(nil), f.memberships...) }

// ScopeResult is one scope's aggregation.
type ScopeResult struct {
	Scope     Scope
	Aggregate *adapter.Update // nil when Err is set
	Inputs    int             // updates aggregated, the node's own included
	Err       error
}

// DroppedUpdate is a received update that was aggregated nowhere, and why.
type DroppedUpdate struct {
	Node   string
	Round  uint64
	Reason string
}

// FederationResult is one round of tiered federation (the seed's
// FederationResult): the node's private update, kept local, and each
// scope's aggregate.
type FederationResult struct {
	Private *adapter.Update
	Scopes  []ScopeResult
	Dropped []DroppedUpdate
}

// Scope returns the result of one scope, or nil if the node is not a
// member of it.
func (r *FederationResult) Scope(s Scope) *ScopeResult {
	s = s.Normalize()
	for i := range r.Scopes {
		if r.Scopes[i].Scope == s {
			return &r.Scopes[i]
		}
	}
	return nil
}

// Federate aggregates one round. own holds what the node released in each
// of its scopes (already prepared by PrepareRelease: clipped, and noised
// for Public) and, under the Private scope, its local update, which is
// returned as the private result and never aggregated with anything.
// received are the updates that arrived from peers; each goes to the
// aggregation of its own scope, and one whose scope the node is not a
// member of (or whose metadata names no valid scope) is dropped with the
// reason. A failing aggregation fails only its own scope.
func (f *TieredFederation) Federate(own map[Scope]*adapter.Update, received []*adapter.Update) FederationResult {
	var res FederationResult
	inputs := map[Scope][]*adapter.Update{}
	// An update relayed back to the node, or received twice, counts once.
	type origin struct {
		scope Scope
		node  string
		round uint64
	}
	seen := map[origin]bool{}
	ownScopes := make([]Scope, 0, len(own))
	for s := range own {
		ownScopes = append(ownScopes, s)
	}
	sort.Slice(ownScopes, func(i, j int) bool { return ownScopes[i].String() < ownScopes[j].String() })
	for _, s := range ownScopes {
		u := own[s]
		s = s.Normalize()
		if u == nil {
			continue
		}
		if s.Tier == Private {
			res.Private = u
			continue
		}
		if _, member := f.aggregators[s]; !member {
			res.Dropped = append(res.Dropped, DroppedUpdate{Node: u.Meta.Node, Round: u.Meta.Round,
				Reason: fmt.Sprintf("own release in scope %v, which the node is not a member of", s)})
			continue
		}
		inputs[s] = append(inputs[s], u)
		seen[origin{s, u.Meta.Node, u.Meta.Round}] = true
	}
	for _, u := range received {
		if u == nil {
			continue
		}
		s, err := ScopeOf(u)
		if err != nil {
			res.Dropped = append(res.Dropped, DroppedUpdate{Node: u.Meta.Node, Round: u.Meta.Round, Reason: err.Error()})
			continue
		}
		if s.Tier == Private {
			res.Dropped = append(res.Dropped, DroppedUpdate{Node: u.Meta.Node, Round: u.Meta.Round,
				Reason: "private update received from a peer: private updates never leave their node"})
			continue
		}
		if seen[origin{s, u.Meta.Node, u.Meta.Round}] {
			res.Dropped = append(res.Dropped, DroppedUpdate{Node: u.Meta.Node, Round: u.Meta.Round,
				Reason: fmt.Sprintf("duplicate: node %q already has an update for round %d in scope %v", u.Meta.Node, u.Meta.Round, s)})
			continue
		}
		placed := false
		for _, m := range f.memberships {
			if AllowsAggregation(m, s) {
				seen[origin{s, u.Meta.Node, u.Meta.Round}] = true
				inputs[m] = append(inputs[m], u)
				placed = true
				break
			}
		}
		if !placed {
			res.Dropped = append(res.Dropped, DroppedUpdate{Node: u.Meta.Node, Round: u.Meta.Round,
				Reason: fmt.Sprintf("scope %v: the node is not a member", s)})
		}
	}
	for _, m := range f.memberships {
		in := inputs[m]
		sr := ScopeResult{Scope: m, Inputs: len(in)}
		if len(in) == 0 {
			sr.Err = fmt.Errorf("scope %v: no updates to aggregate", m)
		} else if agg, err := f.aggregators[m].Aggregate(in); err != nil {
			sr.Err = fmt.Errorf("scope %v: %w", m, err)
		} else {
			sr.Aggregate = agg
		}
		res.Scopes = append(res.Scopes, sr)
	}
	return res
}
