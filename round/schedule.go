package round

import (
	"fmt"
	"time"
)

// Phase is where a round stands at a node.
type Phase int

const (
	PhaseInit      Phase = iota // prepare the local update
	PhaseGossip                 // release the local update to fan-out peers
	PhaseCollect                // wait for propagation and late arrivals
	PhaseAggregate              // aggregation job out with the caller
	PhaseApply                  // aggregate applied (or round skipped)
	PhaseDone                   // nothing more happens until the next slot
)

var phaseNames = [...]string{"init", "gossip", "collect", "aggregate", "apply", "done"}

func (p Phase) String() string {
	if p < 0 || int(p) >= len(phaseNames) {
		return fmt.Sprintf("phase(%d)", int(p))
	}
	return phaseNames[p]
}

// The seed's timeline, 0/10/30/60/90/120 s of a 120 s round, as fractions
// of the interval in twelfths.
const (
	gossipTwelfths    = 1 // T=10s of 120
	collectTwelfths   = 3 // T=30s
	aggregateTwelfths = 6 // T=60s
	applyTwelfths     = 9 // T=90s
)

// Schedule maps wall-clock time to round numbers and phase deadlines.
//
// Round numbering rule: rounds are time slots counted from a genesis shared
// by the whole federation, round = ⌊(now − genesis) / interval⌋. The default
// genesis is the Unix epoch, so the rule needs no configuration and no
// coordination: two nodes with NTP-synchronised clocks and the same
// round_interval_secs agree on the round without exchanging a message, and
// a node that restarts, or joins late, knows the current round from its
// clock alone. We prefer this over rounds that advance when peers are ready
// because a readiness protocol stalls on a silent peer and can be held
// back by a Byzantine one; slots cannot. Clock skew is absorbed by accepting
// deltas for the current and the next round (see Machine).
type Schedule struct {
	Genesis  time.Time
	Interval time.Duration
	// PropagationTimeout bounds how long Collect waits after it opens;
	// Collect never runs past the Aggregate deadline (half the interval).
	PropagationTimeout time.Duration
}

// RoundAt is the round whose slot contains now; times before genesis are round 0.
func (s Schedule) RoundAt(now time.Time) uint64 {
	d := now.Sub(s.Genesis)
	if d < 0 || s.Interval <= 0 {
		return 0
	}
	return uint64(d / s.Interval)
}

// Start is the beginning of round r's slot.
func (s Schedule) Start(r uint64) time.Time {
	return s.Genesis.Add(time.Duration(r) * s.Interval)
}

func (s Schedule) at(r uint64, twelfths int64) time.Time {
	return s.Start(r).Add(time.Duration(int64(s.Interval) * twelfths / 12))
}

// GossipAt is when round r's nodes release their local updates.
func (s Schedule) GossipAt(r uint64) time.Time { return s.at(r, gossipTwelfths) }

// CollectAt is when round r's Collect phase opens.
func (s Schedule) CollectAt(r uint64) time.Time { return s.at(r, collectTwelfths) }

// AggregateAt is the latest time round r's Collect ends.
func (s Schedule) AggregateAt(r uint64) time.Time { return s.at(r, aggregateTwelfths) }

// ApplyAt is the seed's Apply mark; reported for logs, not waited for:
// an aggregate is applied as soon as it is computed.
func (s Schedule) ApplyAt(r uint64) time.Time { return s.at(r, applyTwelfths) }

// End is the end of round r's slot (the start of round r+1).
func (s Schedule) End(r uint64) time.Time { return s.Start(r + 1) }

// CollectEnd is when round r stops taking updates unless every expected
// update arrived earlier: propagation_timeout_secs after Collect opens, but
// no later than the Aggregate deadline. With the seed's values (30 s of a
// 120 s round) both give T=60 s; with a short demo interval the fraction
// governs, with a long interval and a short timeout the timeout does.
func (s Schedule) CollectEnd(r uint64) time.Time {
	end := s.AggregateAt(r)
	if s.PropagationTimeout > 0 {
		if t := s.CollectAt(r).Add(s.PropagationTimeout); t.Before(end) {
			return t
		}
	}
	return end
}

// NominalPhase is the phase the clock alone puts round RoundAt(now) in.
func (s Schedule) NominalPhase(now time.Time) Phase {
	r := s.RoundAt(now)
	switch {
	case now.Before(s.GossipAt(r)):
		return PhaseInit
	case now.Before(s.CollectAt(r)):
		return PhaseGossip
	case now.Before(s.CollectEnd(r)):
		return PhaseCollect
	case now.Before(s.ApplyAt(r)):
		return PhaseAggregate
	}
	return PhaseApply
}
