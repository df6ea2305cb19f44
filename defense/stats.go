package defense

import (
	"fmt"
	"maps"
	"math"
	"math/bits"
	"sync"
)

// FlipWindow is how many of a node's most recent accepted updates Check 2
// counts flips over. A window rather than the seed's lifetime count, so an
// honest node that oscillates now and then near convergence is not
// rejected for ever after its sixth flip in a year.
const FlipWindow = 32

// magnitudeHorizon bounds the running mean of a node's norms: the first
// magnitudeHorizon accepted norms are averaged exactly, after that the mean
// is exponential with weight 1/magnitudeHorizon, so the reference follows a
// training run whose updates shrink as it converges.
const magnitudeHorizon = 20

// directionBlend is the weight of a new accepted, non-flipped direction in
// the node's reference direction.
const directionBlend = 0.25

// NodeStats is what the detector remembers about one source node. The
// daemon persists it as JSON; every field is exported for that reason.
type NodeStats struct {
	// Accepted counts the node's accepted updates.
	Accepted uint64 `json:"accepted"`
	// MeanMagnitude is the running mean of the joint L2 norms of the
	// accepted updates (exact for the first 20, exponential after).
	MeanMagnitude float64 `json:"mean_magnitude"`
	// Direction is the unit-length sketch (SketchDims values) of the
	// node's reference direction: a blend of its accepted updates that were
	// not flips. Empty until a non-zero update is accepted.
	Direction []float64 `json:"direction,omitempty"`
	// FlipHistory has bit i set when the i-th most recent accepted update
	// was a flip (cosine with Direction below FlipCosine).
	FlipHistory uint32 `json:"flip_history"`
	// GroupNorms are the per-group norms of the last accepted update;
	// Check 3 compares other nodes against these.
	GroupNorms map[string]float64 `json:"group_norms,omitempty"`
}

// Flips is the number of flips within the last FlipWindow accepted updates.
func (s NodeStats) Flips() int { return bits.OnesCount32(s.FlipHistory) }

// Clone returns a deep copy.
func (s NodeStats) Clone() NodeStats {
	c := s
	c.Direction = append([]float64(nil), s.Direction...)
	if s.Direction == nil {
		c.Direction = nil
	}
	c.GroupNorms = maps.Clone(s.GroupNorms)
	return c
}

// check rejects statistics that this package cannot have written, so a
// damaged store row is reported instead of silently steering the checks.
func (s NodeStats) check() error {
	if !finite(s.MeanMagnitude) || s.MeanMagnitude < 0 {
		return fmt.Errorf("mean_magnitude = %v", s.MeanMagnitude)
	}
	if n := len(s.Direction); n != 0 && n != SketchDims {
		return fmt.Errorf("direction has %d values, want %d", n, SketchDims)
	}
	var sq float64
	for i, v := range s.Direction {
		if !finite(v) {
			return fmt.Errorf("direction[%d] = %v", i, v)
		}
		sq += v * v
	}
	if len(s.Direction) > 0 && math.Abs(sq-1) > 1e-6 {
		return fmt.Errorf("direction has length %v, want 1", math.Sqrt(sq))
	}
	for g, n := range s.GroupNorms {
		if !finite(n) || n < 0 {
			return fmt.Errorf("group_norms[%q] = %v", g, n)
		}
	}
	if s.Accepted == 0 && (s.MeanMagnitude != 0 || len(s.Direction) > 0 || s.FlipHistory != 0 || len(s.GroupNorms) > 0) {
		return fmt.Errorf("statistics present with accepted = 0")
	}
	return nil
}

// StatsStore keeps NodeStats across restarts. The daemon backs it with
// bbolt; NewMemoryStatsStore is the in-memory twin. LoadStats returns
// ok=false for a node never saved.
type StatsStore interface {
	LoadStats(node string) (NodeStats, bool, error)
	SaveStats(node string, s NodeStats) error
}

type memoryStatsStore struct {
	mu    sync.Mutex
	stats map[string]NodeStats
}

// NewMemoryStatsStore returns a StatsStore held in memory. It stores deep
// copies, so callers cannot change saved statistics behind its back.
func NewMemoryStatsStore() StatsStore {
	return &memoryStatsStore{stats: map[string]NodeStats{}}
}

func (m *memoryStatsStore) LoadStats(node string) (NodeStats, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.stats[node]
	return s.Clone(), ok, nil
}

func (m *memoryStatsStore) SaveStats(node string, s NodeStats) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats[node] = s.Clone()
	return nil
}
