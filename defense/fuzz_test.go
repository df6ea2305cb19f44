package defense

import (
	"encoding/json"
	"errors"
	"testing"
)

// Statistics come back from the daemon's store as JSON: whatever the bytes,
// the detector either judges the update or reports ErrCorruptStats, and
// never panics or stores malformed statistics.
func FuzzNodeStatsJSON(f *testing.F) {
	good := NodeStats{Accepted: 2, MeanMagnitude: 1, GroupNorms: map[string]float64{"coarse": 1}}
	b, _ := json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`{"accepted":1,"mean_magnitude":1,"direction":[1]}`))
	f.Add([]byte(`{"accepted":0,"flip_history":4294967295}`))
	f.Add([]byte(`{"accepted":3,"mean_magnitude":1e308,"group_norms":{"coarse":-1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s NodeStats
		if json.Unmarshal(data, &s) != nil {
			return
		}
		store := NewMemoryStatsStore()
		store.SaveStats("a", s)
		d := NewDetector(DefaultConfig(), store)
		v, err := d.Validate(vec("a", 1, -2, 3))
		if err != nil {
			if !errors.Is(err, ErrCorruptStats) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if v.Weight < 0 || v.Weight > 1 {
			t.Fatalf("weight %v", v.Weight)
		}
		after, _, _ := store.LoadStats("a")
		if err := after.check(); err != nil {
			t.Fatalf("stored malformed statistics after %v: %v", v, err)
		}
	})
}

// A reputation snapshot from disk either restores to a table whose scores
// are all in [0,1] or is refused with ErrCorruptReputation.
func FuzzReputationRestore(f *testing.F) {
	f.Add([]byte(`{"peers":{"a":{"score":0.5,"valid":3,"invalid":1}}}`))
	f.Add([]byte(`{"peers":{"a":{"score":1.5}}}`))
	f.Add([]byte(`{"peers":{"":{"score":0}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s ReputationSnapshot
		if json.Unmarshal(data, &s) != nil {
			return
		}
		r := NewReputation(DefaultReputationParams())
		if err := r.Restore(s); err != nil {
			if !errors.Is(err, ErrCorruptReputation) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		for peer := range s.Peers {
			r.Reward(peer)
			r.Decay(peer, 1e15)
			if g := r.Get(peer); g < 0 || g > 1 {
				t.Fatalf("peer %q at %v", peer, g)
			}
		}
	})
}
