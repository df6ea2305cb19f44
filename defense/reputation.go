package defense

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"time"
)

// ReputationParams is the arithmetic of peer reputation.
type ReputationParams struct {
	// ValidReward is added for each valid delta (seed: +0.01).
	ValidReward float64
	// InvalidPenalty is subtracted for each invalid one (seed: −0.1).
	InvalidPenalty float64
	// Neutral is where an established peer's reputation drifts back to
	// while it is silent.
	Neutral float64
	// ProbationStart is a new identity's reputation. It is below Neutral
	// because a node's good history cannot vouch for an identity made
	// yesterday; making identities must not buy weight.
	ProbationStart float64
	// ProbationUpdates is how many valid deltas end probation. While on
	// probation, silence pulls a peer towards ProbationStart rather than
	// towards Neutral, so an identity cannot wait its way out of probation.
	ProbationUpdates uint64
	// DecayHalfLife: after this much silence a peer's distance to its decay
	// target has halved.
	DecayHalfLife time.Duration
}

// DefaultReputationParams: the seed's +0.01/−0.1, neutral 0.5, new
// identities at 0.1 for their first 20 valid deltas, half-life 6 hours
// (180 rounds of the seed's 120 s).
func DefaultReputationParams() ReputationParams {
	return ReputationParams{
		ValidReward:      0.01,
		InvalidPenalty:   0.1,
		Neutral:          0.5,
		ProbationStart:   0.1,
		ProbationUpdates: 20,
		DecayHalfLife:    6 * time.Hour,
	}
}

// Validate reports every out-of-range field at once.
func (p ReputationParams) Validate() error {
	var errs []error
	unit := func(name string, v float64) {
		if !finite(v) || v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("%w: reputation %s = %v, want 0 ≤ value ≤ 1", ErrInvalidConfig, name, v))
		}
	}
	unit("ValidReward", p.ValidReward)
	unit("InvalidPenalty", p.InvalidPenalty)
	unit("Neutral", p.Neutral)
	unit("ProbationStart", p.ProbationStart)
	if p.DecayHalfLife <= 0 {
		errs = append(errs, fmt.Errorf("%w: reputation DecayHalfLife = %v, want > 0", ErrInvalidConfig, p.DecayHalfLife))
	}
	return errors.Join(errs...)
}

// PeerReputation is one peer's state, exported for persistence.
type PeerReputation struct {
	Score   float64 `json:"score"`
	Valid   uint64  `json:"valid"`
	Invalid uint64  `json:"invalid"`
}

// ReputationSnapshot is the whole table, for persistence as JSON.
type ReputationSnapshot struct {
	Peers map[string]PeerReputation `json:"peers"`
}

// Reputation tracks a score in [0,1] per peer. It is driven by the caller:
// Reward for a valid delta, Penalize for an invalid one, Decay with the
// time a peer has been silent (no clock inside). Penalize the peer that
// sent the bad message on the connection; only a message whose source
// signature verified may be blamed on its source (doc.go). Safe for
// concurrent use.
type Reputation struct {
	mu     sync.Mutex
	params ReputationParams
	peers  map[string]PeerReputation
}

// NewReputation returns an empty table. Params that fail Validate are
// replaced field by field with DefaultReputationParams (Params reports what
// is in effect), so the arithmetic can never leave [0,1] or produce NaN.
func NewReputation(params ReputationParams) *Reputation {
	def := DefaultReputationParams()
	fix := func(v *float64, d float64) {
		if !finite(*v) || *v < 0 || *v > 1 {
			*v = d
		}
	}
	fix(&params.ValidReward, def.ValidReward)
	fix(&params.InvalidPenalty, def.InvalidPenalty)
	fix(&params.Neutral, def.Neutral)
	fix(&params.ProbationStart, def.ProbationStart)
	if params.DecayHalfLife <= 0 {
		params.DecayHalfLife = def.DecayHalfLife
	}
	return &Reputation{params: params, peers: map[string]PeerReputation{}}
}

// Params returns the parameters in effect.
func (r *Reputation) Params() ReputationParams { return r.params }

func (r *Reputation) stateLocked(peer string) PeerReputation {
	if s, ok := r.peers[peer]; ok {
		return s
	}
	return PeerReputation{Score: r.params.ProbationStart}
}

// Reward records a valid delta from peer.
func (r *Reputation) Reward(peer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(peer)
	s.Score = clamp01(s.Score + r.params.ValidReward)
	s.Valid++
	r.peers[peer] = s
}

// Penalize records an invalid message from peer.
func (r *Reputation) Penalize(peer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(peer)
	s.Score = clamp01(s.Score - r.params.InvalidPenalty)
	s.Invalid++
	r.peers[peer] = s
}

// Get returns peer's score; an unknown peer is on probation.
func (r *Reputation) Get(peer string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stateLocked(peer).Score
}

// OnProbation reports whether peer has fewer than ProbationUpdates valid
// deltas.
func (r *Reputation) OnProbation(peer string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stateLocked(peer).Valid < r.params.ProbationUpdates
}

// Decay moves a peer that has been silent for silentFor towards its
// target (Neutral, or ProbationStart while on probation):
// target + (score − target)·2^(−silentFor/DecayHalfLife). The caller
// passes the silence since the last Decay or message, so repeated calls
// compose exactly. A non-positive duration does nothing.
func (r *Reputation) Decay(peer string, silentFor time.Duration) {
	if silentFor <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.peers[peer]
	if !ok {
		return
	}
	target := r.params.Neutral
	if s.Valid < r.params.ProbationUpdates {
		target = r.params.ProbationStart
	}
	f := math.Exp2(-silentFor.Seconds() / r.params.DecayHalfLife.Seconds())
	s.Score = clamp01(target + (s.Score-target)*f)
	r.peers[peer] = s
}

// Forget drops a peer's state (it will start on probation again). The peer
// table calls it when it evicts a peer, which bounds the table's memory.
func (r *Reputation) Forget(peer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.peers, peer)
}

// Snapshot returns a copy of every peer's state.
func (r *Reputation) Snapshot() ReputationSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ReputationSnapshot{Peers: maps.Clone(r.peers)}
}

// Restore replaces the table with s after checking every entry; on error
// the table is unchanged.
func (r *Reputation) Restore(s ReputationSnapshot) error {
	peers := make(map[string]PeerReputation, len(s.Peers))
	for _, id := range sortedKeys(s.Peers) {
		p := s.Peers[id]
		if !finite(p.Score) || p.Score < 0 || p.Score > 1 {
			return fmt.Errorf("%w: peer %q has score %v, want 0 ≤ score ≤ 1", ErrCorruptReputation, id, p.Score)
		}
		peers[id] = p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peers = peers
	return nil
}

func clamp01(x float64) float64 {
	switch {
	case math.IsNaN(x), x < 0:
		return 0
	case x > 1:
		return 1
	}
	return x
}
