package privacy

import (
	"fmt"

	"github.com/dafnet/daf/adapter"
)

// Scope is where an update lives: a tier and, for Group and Tenant, the
// id of the group or tenant. Private and Public have no id: there is one
// Private scope per node and one Public scope per federation.
type Scope struct {
	Tier Tier
	ID   string
}

// Normalize drops the id of the tiers that have none, so that scopes
// compare equal exactly when they are the same scope.
func (s Scope) Normalize() Scope {
	if s.Tier == Private || s.Tier == Public {
		s.ID = ""
	}
	return s
}

// Validate checks that the tier is known and that Group and Tenant scopes
// name their group or tenant.
func (s Scope) Validate() error {
	switch s.Tier {
	case Private, Public:
		return nil
	case Group, Tenant:
		if s.ID == "" {
			return fmt.Errorf("%w: tier %v needs a scope id (the %v's name)", ErrScope, s.Tier, s.Tier)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown %v", ErrScope, s.Tier)
}

func (s Scope) String() string {
	s = s.Normalize()
	if s.ID == "" {
		return s.Tier.String()
	}
	return s.Tier.String() + ":" + s.ID
}

// ScopeOf reads an update's scope from its metadata (daf.tier, daf.scope).
func ScopeOf(u *adapter.Update) (Scope, error) {
	t, err := ParseTier(u.Meta.Tier)
	if err != nil {
		return Scope{}, fmt.Errorf("%w: update from node %q, round %d: daf.tier: %v", ErrScope, u.Meta.Node, u.Meta.Round, err)
	}
	s := Scope{Tier: t, ID: u.Meta.Scope}.Normalize()
	if err := s.Validate(); err != nil {
		return Scope{}, fmt.Errorf("update from node %q, round %d: %w", u.Meta.Node, u.Meta.Round, err)
	}
	return s, nil
}

// CanReceive reports whether a peer whose memberships are member may be
// sent an update of the given scope (the seed's can_receive): only if it
// is a member of exactly that (tier, id). Private updates go to no one.
func CanReceive(member []Scope, update Scope) bool {
	update = update.Normalize()
	if update.Tier == Private || update.Validate() != nil {
		return false
	}
	for _, m := range member {
		if m.Normalize() == update {
			return true
		}
	}
	return false
}

// AllowsAggregation reports whether an update of scope update may be
// aggregated in the local aggregation of scope local (the seed's
// allows_aggregation): only updates of the same (tier, id). Nothing is
// aggregated in the Private scope, whose only content is the node's own
// update, and a Private update arriving from elsewhere is a violation.
func AllowsAggregation(local Scope, update Scope) bool {
	local, update = local.Normalize(), update.Normalize()
	if local.Tier == Private || update.Tier == Private {
		return false
	}
	if local.Validate() != nil || update.Validate() != nil {
		return false
	}
	return local == update
}
