package node

import (
	"slices"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/round"
)

// sybilScreen is the round machine's Screen: defense's Sybil clustering over
// one round's updates, run before aggregation. Flagged sources are dropped.
type sybilScreen struct{ cfg defense.Config }

func (s sybilScreen) Screen(_ uint64, _ gossip.Membership, in []round.Contribution) ([]round.Contribution, error) {
	ups := make([]*adapter.Update, len(in))
	for i, c := range in {
		u := *c.Update
		u.Meta.Node = string(c.Source)
		ups[i] = &u
	}
	flagged := defense.DetectSybil(ups, s.cfg)
	if len(flagged) == 0 {
		return in, nil
	}
	kept := make([]round.Contribution, 0, len(in))
	for _, c := range in {
		if !slices.Contains(flagged, string(c.Source)) {
			kept = append(kept, c)
		}
	}
	return kept, nil
}
