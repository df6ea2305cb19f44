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
// changed, so each adapter is judged by its delta from this node's model
// (the adapters themselves are all alike once the federation has
// converged). The deltas are taken on the fly, never copied.
type sybilScreen struct {
	cfg  defense.Config
	node *Node
}

func (s sybilScreen) Screen(_ uint64, _ gossip.Membership, in []round.Contribution) ([]round.Contribution, error) {
	model := s.node.model()
	xs := make([]defense.SybilInput, len(in))
	for i, c := range in {
		xs[i] = defense.SybilInput{Node: string(c.Source), Update: c.Update}
		if c.Update != nil && c.Update.Meta.Kind == adapter.KindAdapter {
			xs[i].Base = model
		}
	}
	flagged, err := defense.DetectSybilFrom(xs, s.cfg)
	if err != nil {
		return nil, fmt.Errorf("sybil screen: %w", err)
	}
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

// model is the node's current model (nil before it has one). The adapter
// it points to is never written again once installed (apply installs a new
// one), so readers may use it after the lock is released.
func (n *Node) model() *adapter.Update {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.current
}
