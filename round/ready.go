package round

import (
	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/gossip"
)

// Ready is what one event asks of the caller. The caller performs it in
// this order: Persist (before anything leaves the node, so a restart never
// contradicts what peers saw), Send, Apply, then starts Aggregate jobs and
// Train requests, feeding their results back as events.
type Ready struct {
	Persist   []Record
	Send      []gossip.Outbound
	Apply     []Apply
	Aggregate []AggregateJob
	// Train asks for a local update for the round (at most one request is
	// out at a time); answer with LocalUpdateReady.
	Train   []uint64
	Skipped []Skip
}

// Empty reports whether the caller has nothing to do.
func (r Ready) Empty() bool {
	return len(r.Persist) == 0 && len(r.Send) == 0 && len(r.Apply) == 0 &&
		len(r.Aggregate) == 0 && len(r.Train) == 0 && len(r.Skipped) == 0
}

func (r *Ready) merge(o Ready) {
	r.Persist = append(r.Persist, o.Persist...)
	r.Send = append(r.Send, o.Send...)
	r.Apply = append(r.Apply, o.Apply...)
	r.Aggregate = append(r.Aggregate, o.Aggregate...)
	r.Train = append(r.Train, o.Train...)
	r.Skipped = append(r.Skipped, o.Skipped...)
}

// Contribution is one node's update in a round.
type Contribution struct {
	Source gossip.PeerID
	Update *adapter.Update
}

// AggregateJob asks the caller to aggregate the updates that arrived for a
// round and scope (only those: nothing stale is filled in, so the
// aggregator renormalises its weights over exactly these). Answer with
// AggregateDone.
type AggregateJob struct {
	Round         uint64
	Scope         gossip.Membership
	Contributions []Contribution // sorted by source
}

// Apply hands the caller a round's aggregate to merge into the local model.
type Apply struct {
	Round        uint64
	Scope        gossip.Membership
	Update       *adapter.Update
	Participants []gossip.PeerID
}

// Skip reasons (the daemon's daf_rounds_skipped_total{reason} label).
const (
	SkipDisabled       = "disabled"
	SkipPrivate        = "private_tier"
	SkipTooFew         = "too_few_updates"
	SkipJoinedLate     = "joined_after_collect"
	SkipAggregateError = "aggregation_failed"
	SkipAggregateLate  = "aggregation_timeout"
)

// Skip records that a round produced no aggregate for a scope.
type Skip struct {
	Round  uint64
	Scope  gossip.Membership
	Reason string
	Detail string
}

// RecordKind says what a persisted record holds.
type RecordKind int

const (
	// RecordRound is the round log entry of a finished (tier, scope) round.
	RecordRound RecordKind = iota
	// RecordReleased marks that the node released its own update for a
	// round; a restarted node must not release a second, different one.
	RecordReleased
	// RecordPeer is a peer table entry (reputation, keys, memberships),
	// written once per round for every known peer.
	RecordPeer
)

// Record is one item for the node's store.
type Record struct {
	Kind         RecordKind
	Round        uint64
	Scope        gossip.Membership
	Completed    bool   // RecordRound: aggregate applied (false: skipped)
	Reason       string // RecordRound: skip reason
	Participants []gossip.PeerID
	Peer         gossip.PeerInfo // RecordPeer
}

// State is what a restarted node restores from its store.
type State struct {
	Peers []gossip.PeerInfo
	// Released is the highest round the node released an update for, and
	// HasReleased whether it ever did.
	Released    uint64
	HasReleased bool
	// Finished is the highest round with a round log entry, and
	// HasFinished whether there is one: a node restarted in a round it
	// already finished neither repeats nor re-records it.
	Finished    uint64
	HasFinished bool
}

// Stats are the machine's running totals, for metrics.
type Stats struct {
	Round           uint64
	Phase           Phase
	Gossip          gossip.Counters
	RoundsCompleted uint64
	RoundsSkipped   map[string]uint64 // by reason
	SybilRejected   uint64
	OwnLate         uint64 // local updates that came after their round's Collect
}
