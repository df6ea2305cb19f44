package gossip

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Selector picks count peers out of candidates. Candidates are already
// restricted to live members of the delta's scope; a selector only orders
// and trims them. Implementations must be deterministic given rng.
type Selector interface {
	Select(candidates []PeerInfo, count int, now time.Time, rng *rand.Rand) []PeerInfo
}

// ReputationSelector is the seed's select_peers: reputation plus a uniform
// jitter in [0, 0.2), best first. The seed draws new random numbers inside
// the sort comparator, which is not a consistent order; we draw one jitter
// per candidate and sort once.
type ReputationSelector struct{}

// JitterSpan is the width of the seed's random bonus: peers whose
// reputations differ by less than this swap places from round to round, so
// load spreads among equally trusted peers.
const JitterSpan = 0.2

// Select implements Selector.
func (ReputationSelector) Select(candidates []PeerInfo, count int, _ time.Time, rng *rand.Rand) []PeerInfo {
	return SelectPeers(candidates, count, rng)
}

// SelectPeers returns up to count candidates ordered by reputation + U[0,0.2).
// Ties are broken by peer ID so the result depends only on the inputs and rng.
func SelectPeers(candidates []PeerInfo, count int, rng *rand.Rand) []PeerInfo {
	type scored struct {
		p     PeerInfo
		score float64
	}
	s := make([]scored, len(candidates))
	for i, p := range candidates {
		s[i] = scored{p, p.Reputation + rng.Float64()*JitterSpan}
	}
	slices.SortStableFunc(s, func(a, b scored) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return cmpID(a.p.ID, b.p.ID)
	})
	count = min(max(count, 0), len(s))
	out := make([]PeerInfo, count)
	for i := range out {
		out[i] = s[i].p
	}
	return out
}
