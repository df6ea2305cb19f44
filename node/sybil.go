package node

import (
	"fmt"
	"slices"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/round"
)

// sybilScreen is the round machine's Screen: defense's Sybil clustering over
// one round's updates, run before aggregation. Flagged sources are dropped.
// Updates travel as adapters; the clustering compares what each node
// changed, so each is judged as its delta from this node's model (the
// adapters themselves are all alike once the federation has converged).
type sybilScreen struct {
	cfg  defense.Config
	node *Node
}

func (s sybilScreen) Screen(_ uint64, _ gossip.Membership, in []round.Contribution) ([]round.Contribution, error) {
	ups := make([]*adapter.Update, len(in))
	for i, c := range in {
		d, err := s.node.deltaFromModel(c.Update)
		if err != nil {
			return nil, fmt.Errorf("sybil screen: update of %s: %w", c.Source, err)
		}
		d.Meta.Node = string(c.Source)
		ups[i] = d
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

// deltaFilter is the gossip engine's Byzantine filter: defense's detector
// on the delta a received adapter makes to this node's model. A suspicious
// verdict's down-weighting of the sample count carries over to the adapter.
type deltaFilter struct {
	inner defense.GossipFilter
	node  *Node
}

func (f deltaFilter) Check(source gossip.PeerID, r uint64, scope gossip.Membership, u *adapter.Update) error {
	if u == nil {
		return f.inner.Check(source, r, scope, u)
	}
	d, err := f.node.deltaFromModel(u)
	if err != nil {
		return fmt.Errorf("%w: %v", gossip.ErrByzantine, err)
	}
	if err := f.inner.Check(source, r, scope, d); err != nil {
		return err
	}
	u.Meta.Samples = d.Meta.Samples
	return nil
}

// deltaFromModel is u's delta from the node's current model, computed under
// the model's lock instead of on a copy (a copy per received update would
// cost a full model's allocation each time).
func (n *Node) deltaFromModel(u *adapter.Update) (*adapter.Update, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return deltaFrom(n.current, u)
}
