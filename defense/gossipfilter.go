package defense

import (
	"fmt"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/gossip"
)

// GossipFilter plugs a Detector into the gossip engine as its
// gossip.Filter, so the daemon and the simulator run the same checks.
//
// The detector keys statistics by the envelope's source, which the source
// signed, not by the node named in the payload's metadata. A Rejected
// verdict becomes an error wrapping gossip.ErrByzantine (the engine then
// counts it as rejected_byzantine and blames the source only). A Suspicious
// update is let through with its Meta.Samples multiplied by Verdict.Weight,
// which is how the sample-weighted strategies down-weight it; the
// element-wise robust strategies ignore weights and bound it on their own.
type GossipFilter struct {
	Detector *Detector
	// OnVerdict, when set, sees every verdict, e.g. to count suspicious
	// updates or to Reward/Penalize the source in a Reputation.
	OnVerdict func(source gossip.PeerID, round uint64, v Verdict)
	// Base, when set, returns the model an adapter update (Meta.Kind
	// adapter) is judged against: the detector then sees what the adapter
	// changes in it (Detector.ValidateFrom), not the adapter itself, whose
	// values are all alike once a federation has converged. A delta update
	// is judged as it is. Base may return nil (no model yet).
	Base func() *adapter.Update
}

// Check implements gossip.Filter.
func (f GossipFilter) Check(source gossip.PeerID, round uint64, scope gossip.Membership, u *adapter.Update) error {
	if u == nil {
		return fmt.Errorf("%w: %s round %d in %s: %w: nil update", gossip.ErrByzantine, source, round, scope, ErrBadUpdate)
	}
	judged := *u
	judged.Meta.Node = string(source)
	var base *adapter.Update
	if f.Base != nil && u.Meta.Kind == adapter.KindAdapter {
		base = f.Base()
	}
	v, err := f.Detector.ValidateFrom(&judged, base)
	if err != nil {
		return fmt.Errorf("%s round %d in %s: %w", source, round, scope, err)
	}
	if f.OnVerdict != nil {
		f.OnVerdict(source, round, v)
	}
	switch v.Outcome {
	case Rejected:
		return fmt.Errorf("%w: round %d in %s: %s", gossip.ErrByzantine, round, scope, v)
	case Suspicious:
		u.Meta.Samples *= v.Weight
	}
	return nil
}

var _ gossip.Filter = GossipFilter{}
