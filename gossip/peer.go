package gossip

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"

	"github.com/dafnet/daf/privacy"
)

// Membership is one (tier, scope) a node belongs to. Updates released in a
// membership go only to peers holding the same membership and are
// aggregated only with updates of the same membership.
type Membership struct {
	Tier  privacy.Tier
	Scope string
}

func (m Membership) String() string {
	if m.Scope == "" {
		return m.Tier.String()
	}
	return m.Tier.String() + "/" + m.Scope
}

// Reputation arithmetic of the seed's GossipProtocol. Reputation lives in
// [0, 1]; a peer we know nothing about starts in the middle so that a few
// good deltas lift it above newcomers and one bad delta sinks it below them.
const (
	InitialReputation = 0.5
	RewardAccepted    = 0.01
	PenaltyBad        = 0.1
)

// PeerInfo is what a node knows about another node: the seed's PeerInfo
// (address, public key, reputation, tier, last seen) with the keys DESIGN §5
// needs and the memberships of DESIGN §6.
type PeerInfo struct {
	ID          PeerID
	Addrs       []string          // multiaddrs or host:port, as learned
	SignKey     ed25519.PublicKey // identity key (embedded in a libp2p peer ID)
	BoxKey      []byte            // X25519 key from the peer's signed key record
	Reputation  float64
	Memberships []Membership
	// Contributes is false for a node that relays and aggregates but
	// trains nothing; rounds do not wait for its update.
	Contributes bool
	// Incarnation changes each time the peer restarts (the daemon uses its
	// start time). A new incarnation has lost whatever it held in memory,
	// so what we believed it holds is forgotten.
	Incarnation uint64
	LastSeen    time.Time
}

// MemberOf reports whether the peer belongs to m.
func (p PeerInfo) MemberOf(m Membership) bool {
	return slices.Contains(p.Memberships, m)
}

// HomeTier is the most closed tier the peer belongs to; the adaptive
// selector uses it to spread a selection over tiers. A peer with no known
// membership counts as public.
func (p PeerInfo) HomeTier() privacy.Tier {
	home := privacy.Public
	for _, m := range p.Memberships {
		if m.Tier < home {
			home = m.Tier
		}
	}
	return home
}

func (p PeerInfo) clone() PeerInfo {
	p.Addrs = slices.Clone(p.Addrs)
	p.SignKey = slices.Clone(p.SignKey)
	p.BoxKey = slices.Clone(p.BoxKey)
	p.Memberships = slices.Clone(p.Memberships)
	return p
}

// PeerTable is the node's view of the federation. It is owned by one
// goroutine (the round machine's driver) and is not safe for concurrent use.
type PeerTable struct {
	self  PeerID
	peers map[PeerID]*PeerInfo
}

// NewPeerTable returns an empty table for the node self; self is never
// stored, so a node never selects itself.
func NewPeerTable(self PeerID) *PeerTable {
	return &PeerTable{self: self, peers: map[PeerID]*PeerInfo{}}
}

// Upsert merges what was learned about a peer and reports whether the peer
// restarted (a new, non-zero incarnation). Reputation is the table's own
// judgement: a peer record from the network never sets it, except that a
// record restored from our store (Reputation > 0 on a new entry) keeps its
// value. LastSeen only moves forward.
func (t *PeerTable) Upsert(info PeerInfo) (restarted bool, err error) {
	if info.ID == "" {
		return false, fmt.Errorf("%w: peer record without an ID", ErrMalformed)
	}
	if info.ID == t.self {
		return false, nil
	}
	p, ok := t.peers[info.ID]
	if !ok {
		c := info.clone()
		if c.Reputation <= 0 || c.Reputation > 1 {
			c.Reputation = InitialReputation
		}
		t.peers[info.ID] = &c
		return false, nil
	}
	if info.Incarnation != 0 && info.Incarnation != p.Incarnation {
		restarted = p.Incarnation != 0
		p.Incarnation = info.Incarnation
	}
	if len(info.Addrs) > 0 {
		p.Addrs = slices.Clone(info.Addrs)
	}
	if len(info.SignKey) > 0 {
		p.SignKey = slices.Clone(info.SignKey)
	}
	if len(info.BoxKey) > 0 {
		p.BoxKey = slices.Clone(info.BoxKey)
	}
	if info.Memberships != nil {
		p.Memberships = slices.Clone(info.Memberships)
	}
	p.Contributes = info.Contributes
	if info.LastSeen.After(p.LastSeen) {
		p.LastSeen = info.LastSeen
	}
	return restarted, nil
}

// Seen records that id was heard from at now, adding it with no known
// memberships if it is new (it can then relay to us but receives nothing
// scoped until its record arrives).
func (t *PeerTable) Seen(id PeerID, now time.Time) {
	if id == t.self || id == "" {
		return
	}
	p, ok := t.peers[id]
	if !ok {
		t.peers[id] = &PeerInfo{ID: id, Reputation: InitialReputation, LastSeen: now}
		return
	}
	if now.After(p.LastSeen) {
		p.LastSeen = now
	}
}

// Get returns a copy of the peer's record.
func (t *PeerTable) Get(id PeerID) (PeerInfo, bool) {
	p, ok := t.peers[id]
	if !ok {
		return PeerInfo{}, false
	}
	return p.clone(), true
}

// Adjust adds delta to the peer's reputation, clamped to [0, 1], and returns
// the new value. Unknown peers are ignored (returns 0, false).
func (t *PeerTable) Adjust(id PeerID, delta float64) (float64, bool) {
	p, ok := t.peers[id]
	if !ok {
		return 0, false
	}
	p.Reputation = min(1, max(0, p.Reputation+delta))
	return p.Reputation, true
}

// Len is the number of known peers.
func (t *PeerTable) Len() int { return len(t.peers) }

// All returns every peer, sorted by ID so callers iterate deterministically.
func (t *PeerTable) All() []PeerInfo {
	out := make([]PeerInfo, 0, len(t.peers))
	for _, p := range t.peers {
		out = append(out, p.clone())
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmpID(a.ID, b.ID) })
	return out
}

// Live returns the peers heard from within timeout before now (a
// non-positive timeout keeps everyone), sorted by ID.
func (t *PeerTable) Live(now time.Time, timeout time.Duration) []PeerInfo {
	all := t.All()
	if timeout <= 0 {
		return all
	}
	live := all[:0]
	for _, p := range all {
		if now.Sub(p.LastSeen) <= timeout {
			live = append(live, p)
		}
	}
	return live
}

// LiveMembers returns the live peers that belong to m.
func (t *PeerTable) LiveMembers(m Membership, now time.Time, timeout time.Duration) []PeerInfo {
	live := t.Live(now, timeout)
	out := live[:0]
	for _, p := range live {
		if p.MemberOf(m) {
			out = append(out, p)
		}
	}
	return out
}

func cmpID(a, b PeerID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
