package schedule

import (
	"errors"
	"fmt"
	"sort"

	"github.com/dafnet/daf/config"
)

// MaxT is the top of the timestep axis; t runs over [0, MaxT].
const MaxT = config.MaxTimestep

// ErrGroups marks a set of groups that does not tile [0, MaxT] or cannot be
// built from its inputs.
var ErrGroups = errors.New("invalid timestep groups")

// Role is what a timestep group learns, following the seed: at high noise
// the model decides global structure, in the middle domain patterns, at low
// noise fine details and style.
type Role int

const (
	CoarseStructure Role = iota // t = 1000 → 700 in the seed: global structure, syntax
	DomainPatterns              // t = 700 → 300: domain patterns, semantics
	FineRefinement              // t = 300 → 0: fine details, style
)

func (r Role) String() string {
	switch r {
	case CoarseStructure:
		return "coarse_structure"
	case DomainPatterns:
		return "domain_patterns"
	case FineRefinement:
		return "fine_refinement"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// Group is one timestep group: its name (the group prefix in update files),
// its range [Start, End) of t, its role and its aggregation strategy (one of
// config.StrategyNames).
type Group struct {
	Name     string
	Start    int // inclusive
	End      int // exclusive, except that t = MaxT belongs to the group ending at MaxT
	Role     Role
	Strategy string
}

// Contains reports whether t falls in g, counting t = MaxT in the group
// that ends there.
func (g Group) Contains(t int) bool {
	return (g.Start <= t && t < g.End) || (t == MaxT && g.End == MaxT)
}

// Names of the three groups of the seed, as used in update files.
const (
	Coarse = "coarse"
	Domain = "domain"
	Fine   = "fine"
)

// FromConfig returns the groups of [federation.daf], ordered coarse, domain,
// fine. It fails (wrapping ErrGroups) unless the ranges tile [0, MaxT].
func FromConfig(d config.DAF) ([]Group, error) {
	groups := []Group{
		{Name: Coarse, Start: d.CoarseRange[0], End: d.CoarseRange[1], Role: CoarseStructure, Strategy: d.CoarseStrategy},
		{Name: Domain, Start: d.DomainRange[0], End: d.DomainRange[1], Role: DomainPatterns, Strategy: d.DomainStrategy},
		{Name: Fine, Start: d.FineRange[0], End: d.FineRange[1], Role: FineRefinement, Strategy: d.FineStrategy},
	}
	if err := CheckTiling(groups); err != nil {
		return nil, err
	}
	return groups, nil
}

// CheckTiling returns nil if the groups have distinct non-empty names and
// their ranges cover [0, MaxT] exactly once, and otherwise an error wrapping
// ErrGroups that names the groups at fault.
func CheckTiling(groups []Group) error {
	if len(groups) == 0 {
		return fmt.Errorf("%w: no groups", ErrGroups)
	}
	seen := map[string]bool{}
	for _, g := range groups {
		if g.Name == "" {
			return fmt.Errorf("%w: a group has no name", ErrGroups)
		}
		if seen[g.Name] {
			return fmt.Errorf("%w: group name %q used twice", ErrGroups, g.Name)
		}
		seen[g.Name] = true
		if g.Start < 0 || g.End > MaxT || g.Start >= g.End {
			return fmt.Errorf("%w: group %s has range [%d, %d), want a non-empty piece of [0, %d]", ErrGroups, g.Name, g.Start, g.End, MaxT)
		}
	}
	sorted := append([]Group(nil), groups...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Start < sorted[j].Start })
	if sorted[0].Start != 0 {
		return fmt.Errorf("%w: t in [0, %d) belongs to no group (lowest is %s)", ErrGroups, sorted[0].Start, sorted[0].Name)
	}
	for i := 1; i < len(sorted); i++ {
		a, b := sorted[i-1], sorted[i]
		if a.End > b.Start {
			return fmt.Errorf("%w: groups %s and %s overlap on t in [%d, %d)", ErrGroups, a.Name, b.Name, b.Start, min(a.End, b.End))
		}
		if a.End < b.Start {
			return fmt.Errorf("%w: t in [%d, %d) between groups %s and %s belongs to no group", ErrGroups, a.End, b.Start, a.Name, b.Name)
		}
	}
	if last := sorted[len(sorted)-1]; last.End != MaxT {
		return fmt.Errorf("%w: t in [%d, %d] above group %s belongs to no group", ErrGroups, last.End, MaxT, last.Name)
	}
	return nil
}

// Lookup returns the index in groups of the group holding t (t = MaxT
// belongs to the group whose End is MaxT), or false if none does.
func Lookup(groups []Group, t int) (int, bool) {
	for i, g := range groups {
		if g.Contains(t) {
			return i, true
		}
	}
	return 0, false
}
