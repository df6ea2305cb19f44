package gossip

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/dafnet/daf/privacy"
)

func ids(ps []PeerInfo) []PeerID {
	out := make([]PeerID, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func TestSelectPeersReputationAndJitter(t *testing.T) {
	cands := []PeerInfo{
		{ID: "low", Reputation: 0.2},
		{ID: "trusted", Reputation: 0.9},
		{ID: "mid1", Reputation: 0.5},
		{ID: "mid2", Reputation: 0.5},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	firstMid := map[PeerID]int{}
	for range 200 {
		got := SelectPeers(cands, 3, rng)
		if len(got) != 3 {
			t.Fatalf("selected %d peers, want 3", len(got))
		}
		// 0.9 beats 0.5 + jitter < 0.7; 0.2 + jitter < 0.4 never beats 0.5.
		if got[0].ID != "trusted" || slices.Contains(ids(got), "low") {
			t.Fatalf("selection %v: want trusted first and low left out", ids(got))
		}
		firstMid[got[1].ID]++
	}
	// Equal reputations rotate: both mids come second in a fair share of rounds.
	if firstMid["mid1"] < 60 || firstMid["mid2"] < 60 {
		t.Fatalf("equal peers do not rotate: %v", firstMid)
	}
	if got := SelectPeers(cands, 10, rng); len(got) != 4 {
		t.Fatalf("count above candidates: got %d peers, want 4", len(got))
	}
	a := SelectPeers(cands, 2, rand.New(rand.NewPCG(7, 7)))
	b := SelectPeers(cands, 2, rand.New(rand.NewPCG(7, 7)))
	if !slices.Equal(ids(a), ids(b)) {
		t.Fatalf("same seed, different selections: %v vs %v", ids(a), ids(b))
	}
}

func TestAdaptiveScore(t *testing.T) {
	now := time.Unix(10_000, 0)
	lat := NewLatencyMatrix()
	lat.Observe("me", "a", time.Second)
	s := &AdaptiveSelector{Self: "me", Latency: lat}
	a := PeerInfo{ID: "a", Reputation: 0.5, LastSeen: now.Add(-time.Hour), Addrs: []string{"/ip4/10.1.2.3/tcp/4001"}}
	b := PeerInfo{ID: "b", Reputation: 0.5, LastSeen: now, Addrs: []string{"/ip4/10.1.9.9/tcp/4001"},
		Memberships: []Membership{{Tier: privacy.Tenant, Scope: "x"}}}
	// a: latency 1/(1+1) = 0.5, freshness 1/(1+1h) = 0.5, diversity: tier
	// public shared by 1 of 2 → 0.5, range 10.1/16 shared by 2 of 2 → 0.
	want := 0.4*0.5 + 0.3*0.5 + 0.2*0.5 + 0.1*(0.5*0.5+0.5*0)
	if got := s.Score(a, []PeerInfo{a, b}, now); math.Abs(got-want) > 1e-12 {
		t.Fatalf("score of a = %v, want %v", got, want)
	}
	// b has no measured latency: it is scored with the median (1 s).
	wantB := 0.4*0.5 + 0.3*0.5 + 0.2*1 + 0.1*(0.5*0.5)
	if got := s.Score(b, []PeerInfo{a, b}, now); math.Abs(got-wantB) > 1e-12 {
		t.Fatalf("score of b = %v, want %v", got, wantB)
	}
	lat.Observe("me", "a", 3*time.Second) // EWMA: 0.75·1 s + 0.25·3 s
	if d, _ := lat.Get("a", "me"); d != 1500*time.Millisecond {
		t.Fatalf("smoothed latency %v, want 1.5s", d)
	}
}

func TestAdaptivePrefersLowLatency(t *testing.T) {
	now := time.Unix(10_000, 0)
	lat := NewLatencyMatrix()
	lat.Observe("me", "near", 10*time.Millisecond)
	lat.Observe("me", "far", 2*time.Second)
	s := &AdaptiveSelector{Self: "me", Latency: lat}
	cands := []PeerInfo{{ID: "far", Reputation: 0.5, LastSeen: now}, {ID: "near", Reputation: 0.5, LastSeen: now}}
	got := s.Select(cands, 1, now, rand.New(rand.NewPCG(1, 1)))
	if len(got) != 1 || got[0].ID != "near" {
		t.Fatalf("selected %v, want near", ids(got))
	}
}

func TestAdaptiveTierCap(t *testing.T) {
	now := time.Unix(10_000, 0)
	var cands []PeerInfo
	for i := range 8 {
		cands = append(cands, PeerInfo{ID: PeerID(fmt.Sprintf("pub%d", i)), Reputation: 0.9, LastSeen: now})
	}
	for i := range 2 {
		cands = append(cands, PeerInfo{ID: PeerID(fmt.Sprintf("ten%d", i)), Reputation: 0.1, LastSeen: now,
			Memberships: []Membership{{Tier: privacy.Tenant, Scope: "t"}}})
	}
	s := &AdaptiveSelector{Self: "me"}
	got := s.Select(cands, 5, now, rand.New(rand.NewPCG(1, 1)))
	tiers := map[privacy.Tier]int{}
	for _, p := range got {
		tiers[p.HomeTier()]++
	}
	// cap = ⌊0.4·5⌋ = 2 per tier; the seed's rule admits only 4 of 5 here.
	if tiers[privacy.Public] != 2 || tiers[privacy.Tenant] != 2 {
		t.Fatalf("tier counts %v, want 2 public and 2 tenant", tiers)
	}
	// One tier only: no cap, and never zero peers (the seed's count*2/5 = 0).
	one := s.Select(cands[:8], 1, now, rand.New(rand.NewPCG(1, 1)))
	if len(one) != 1 {
		t.Fatalf("single tier, count 1: selected %d peers", len(one))
	}
	two := s.Select([]PeerInfo{cands[0], cands[8]}, 1, now, rand.New(rand.NewPCG(1, 1)))
	if len(two) != 1 {
		t.Fatalf("two tiers, count 1: selected %d peers, want 1", len(two))
	}
}

// Properties of any adaptive selection: a subset of the candidates without
// repeats, at most count, within the tier cap when tiers are mixed, and
// never empty when there is someone to pick.
func TestAdaptiveSelectProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		now := time.Unix(50_000, 0)
		n := rapid.IntRange(0, 30).Draw(t, "n")
		var cands []PeerInfo
		for i := range n {
			tier := privacy.Tier(rapid.IntRange(1, 3).Draw(t, "tier"))
			cands = append(cands, PeerInfo{
				ID:          PeerID(fmt.Sprintf("p%02d", i)),
				Reputation:  rapid.Float64Range(0, 1).Draw(t, "rep"),
				LastSeen:    now.Add(-time.Duration(rapid.IntRange(0, 7200).Draw(t, "age")) * time.Second),
				Memberships: []Membership{{Tier: tier, Scope: "s"}},
				Addrs:       []string{fmt.Sprintf("10.%d.0.1:4001", rapid.IntRange(0, 3).Draw(t, "net"))},
			})
		}
		count := rapid.IntRange(0, 12).Draw(t, "count")
		s := &AdaptiveSelector{Self: "me"}
		got := s.Select(cands, count, now, rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0)))
		if len(got) > count || len(got) > n {
			t.Fatalf("selected %d of %d with count %d", len(got), n, count)
		}
		if count > 0 && n > 0 && len(got) == 0 {
			t.Fatal("no peer selected")
		}
		seen := map[PeerID]bool{}
		tiers := map[privacy.Tier]int{}
		present := map[privacy.Tier]bool{}
		for _, c := range cands {
			present[c.HomeTier()] = true
		}
		for _, p := range got {
			if seen[p.ID] {
				t.Fatalf("%s selected twice", p.ID)
			}
			seen[p.ID] = true
			tiers[p.HomeTier()]++
		}
		if len(present) > 1 {
			limit := max(1, int(math.Floor(TierCapFraction*float64(count))))
			for tier, k := range tiers {
				if k > limit {
					t.Fatalf("tier %v has %d of %d selected, cap %d", tier, k, count, limit)
				}
			}
		}
	})
}

func TestAddressRange(t *testing.T) {
	for addr, want := range map[string]string{
		"/ip4/10.1.2.3/tcp/4001":          "10.1.0.0/16",
		"/ip6/2001:db8:1:2::5/udp/1/quic": "2001:db8:1::/48",
		"192.168.7.1:4001":                "192.168.0.0/16",
		"[2001:db8::1]:4001":              "2001:db8::/48",
		"node.example.org:4001":           "node.example.org",
	} {
		if got := addressRange(PeerInfo{Addrs: []string{addr}}); got != want {
			t.Errorf("addressRange(%q) = %q, want %q", addr, got, want)
		}
	}
}
