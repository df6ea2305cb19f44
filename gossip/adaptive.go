package gossip

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dafnet/daf/privacy"
)

// Weights of the seed's AdaptivePeerSelector score.
const (
	WeightReputation = 0.4
	WeightLatency    = 0.3
	WeightFreshness  = 0.2
	WeightDiversity  = 0.1
	// TierCapFraction: with peers of several tiers available, at most this
	// share of a selection comes from any one tier.
	TierCapFraction = 0.4
	// adaptiveJitter breaks ties and rotates peers whose scores are close,
	// so the same best peers do not carry every delta.
	adaptiveJitter = 0.02
)

// LatencyMatrix holds measured round-trip times between pairs of nodes (the
// seed's latency_matrix), smoothed as an exponentially weighted average so
// one slow ping does not swing selection. The daemon fills it from libp2p
// ping; the simulator from its link model.
type LatencyMatrix struct {
	rtt map[[2]PeerID]time.Duration
}

// latencySmoothing is the weight of a new sample in the running average.
const latencySmoothing = 0.25

// NewLatencyMatrix returns an empty matrix.
func NewLatencyMatrix() *LatencyMatrix {
	return &LatencyMatrix{rtt: map[[2]PeerID]time.Duration{}}
}

func pairKey(a, b PeerID) [2]PeerID {
	if b < a {
		a, b = b, a
	}
	return [2]PeerID{a, b}
}

// Observe folds one measured round trip between a and b into the matrix.
func (l *LatencyMatrix) Observe(a, b PeerID, rtt time.Duration) {
	if rtt < 0 {
		return
	}
	k := pairKey(a, b)
	old, ok := l.rtt[k]
	if !ok {
		l.rtt[k] = rtt
		return
	}
	l.rtt[k] = time.Duration(float64(old)*(1-latencySmoothing) + float64(rtt)*latencySmoothing)
}

// Get returns the smoothed round trip between a and b, if measured.
func (l *LatencyMatrix) Get(a, b PeerID) (time.Duration, bool) {
	d, ok := l.rtt[pairKey(a, b)]
	return d, ok
}

// AdaptiveSelector is the seed's AdaptivePeerSelector: score =
// 0.4·reputation + 0.3·latency + 0.2·freshness + 0.1·diversity, best first,
// with no tier holding more than 40 % of the selection when several tiers
// are present.
//
//   - latency score 1/(1+rtt in seconds); an unmeasured peer scores as if
//     its rtt were the median of the measured ones (neither favoured nor
//     shunned until pinged).
//   - freshness 1/(1+hours since last seen), as in the seed.
//   - diversity: half for how rare the peer's home tier is among the
//     candidates, half for how rare its address range is (IPv4 /16, IPv6 /48,
//     otherwise the host name), each 1 − share of candidates sharing it. Rare
//     peers bridge groups that would otherwise form separate islands, which is
//     what keeps a federation connected through a partition.
type AdaptiveSelector struct {
	Self    PeerID
	Latency *LatencyMatrix
}

// Select implements Selector.
func (s *AdaptiveSelector) Select(candidates []PeerInfo, count int, now time.Time, rng *rand.Rand) []PeerInfo {
	count = min(max(count, 0), len(candidates))
	if count == 0 {
		return nil
	}
	tierShare, rangeShare := s.shares(candidates)
	medianRTT := s.medianLatency(candidates)
	type scored struct {
		p     PeerInfo
		score float64
	}
	all := make([]scored, len(candidates))
	for i, p := range candidates {
		div := 0.5*(1-tierShare[p.HomeTier()]) + 0.5*(1-rangeShare[addressRange(p)])
		all[i] = scored{p, s.score(p, now, medianRTT, div) + rng.Float64()*adaptiveJitter}
	}
	slices.SortStableFunc(all, func(a, b scored) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return cmpID(a.p.ID, b.p.ID)
	})

	tiers := len(tierShare)
	capPerTier := count
	if tiers > 1 {
		// The seed's count*2/5 is 0 for count < 3, which selects nobody;
		// at least one peer per tier is always allowed.
		capPerTier = max(1, int(math.Floor(TierCapFraction*float64(count))))
	}
	perTier := map[privacy.Tier]int{}
	out := make([]PeerInfo, 0, count)
	for _, c := range all {
		t := c.p.HomeTier()
		if perTier[t] >= capPerTier {
			continue
		}
		perTier[t]++
		out = append(out, c.p)
		if len(out) == count {
			break
		}
	}
	return out
}

// Score is a peer's selection score without jitter, in [0, 1]: useful to
// show why a peer was or was not chosen.
func (s *AdaptiveSelector) Score(p PeerInfo, candidates []PeerInfo, now time.Time) float64 {
	tierShare, rangeShare := s.shares(candidates)
	div := 0.5*(1-tierShare[p.HomeTier()]) + 0.5*(1-rangeShare[addressRange(p)])
	return s.score(p, now, s.medianLatency(candidates), div)
}

func (s *AdaptiveSelector) score(p PeerInfo, now time.Time, medianRTT time.Duration, diversity float64) float64 {
	rtt := medianRTT
	if s.Latency != nil {
		if d, ok := s.Latency.Get(s.Self, p.ID); ok {
			rtt = d
		}
	}
	latency := 1 / (1 + rtt.Seconds())
	age := max(0, now.Sub(p.LastSeen).Hours())
	freshness := 1 / (1 + age)
	return WeightReputation*p.Reputation + WeightLatency*latency + WeightFreshness*freshness + WeightDiversity*diversity
}

func (s *AdaptiveSelector) shares(candidates []PeerInfo) (map[privacy.Tier]float64, map[string]float64) {
	tiers := map[privacy.Tier]float64{}
	ranges := map[string]float64{}
	n := float64(len(candidates))
	for _, p := range candidates {
		tiers[p.HomeTier()] += 1 / n
		ranges[addressRange(p)] += 1 / n
	}
	return tiers, ranges
}

func (s *AdaptiveSelector) medianLatency(candidates []PeerInfo) time.Duration {
	if s.Latency == nil {
		return 0
	}
	var ds []time.Duration
	for _, p := range candidates {
		if d, ok := s.Latency.Get(s.Self, p.ID); ok {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// addressRange names the network a peer's first address lies in: IPv4 /16,
// IPv6 /48, otherwise the host part as written ("" when no address is
// known). Multiaddrs (/ip4/10.1.2.3/tcp/4001) and host:port are understood.
func addressRange(p PeerInfo) string {
	if len(p.Addrs) == 0 {
		return ""
	}
	host := hostOf(p.Addrs[0])
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	bits := 48
	if ip.Is4() || ip.Is4In6() {
		ip = ip.Unmap()
		bits = 16
	}
	pfx, err := ip.Prefix(bits)
	if err != nil {
		return host
	}
	return pfx.String()
}

func hostOf(addr string) string {
	if strings.HasPrefix(addr, "/") {
		parts := strings.Split(addr, "/")
		// "/ip4/1.2.3.4/tcp/1" splits into "", "ip4", "1.2.3.4", ...
		if len(parts) >= 3 {
			return parts[2]
		}
		return addr
	}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().String()
	}
	if i := strings.LastIndexByte(addr, ':'); i > 0 && !strings.Contains(addr[:i], ":") {
		return addr[:i]
	}
	return addr
}
