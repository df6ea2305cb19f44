package round

import (
	"slices"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/gossip"
)

// SybilScreen is the Screen of the product: defense.DetectSybil over a
// round's updates of one scope. Updates are named by their signed source,
// not by whatever their metadata says, so clones cannot hide behind
// made-up names, and every node drops the same sources whatever order the
// updates reached it in.
type SybilScreen struct {
	Config defense.Config
}

// Screen implements Screen.
func (s SybilScreen) Screen(_ uint64, _ gossip.Membership, in []Contribution) ([]Contribution, error) {
	named := make([]*adapter.Update, len(in))
	for i, c := range in {
		u := *c.Update // shallow: only the metadata's node name changes
		u.Meta.Node = string(c.Source)
		named[i] = &u
	}
	flagged := defense.DetectSybil(named, s.Config)
	kept := make([]Contribution, 0, len(in))
	for _, c := range in {
		if _, found := slices.BinarySearch(flagged, string(c.Source)); !found {
			kept = append(kept, c)
		}
	}
	return kept, nil
}
