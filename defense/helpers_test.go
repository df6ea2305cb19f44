package defense

import (
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// vec returns an update from node holding one tensor per group, with the
// given values, in a single group "coarse".
func vec(node string, vals ...float32) *adapter.Update {
	return groupVec(node, "coarse", vals...)
}

func groupVec(node, group string, vals ...float32) *adapter.Update {
	u := adapter.New()
	u.Meta.Node = node
	t := adapter.NewTensor(len(vals))
	copy(t.Data, vals)
	u.Set(group, "layers.0.q_proj.lora_A.weight", t)
	return u
}

func randomVec(rng *rand.Rand, node string, n int, scale float64) *adapter.Update {
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(scale * rng.NormFloat64())
	}
	return vec(node, vals...)
}

// testStore is a StatsStore twin whose load and save can be made to fail.
type testStore struct {
	StatsStore
	loadErr, saveErr error
	saves            int
}

func newTestStore() *testStore { return &testStore{StatsStore: NewMemoryStatsStore()} }

func (s *testStore) LoadStats(node string) (NodeStats, bool, error) {
	if s.loadErr != nil {
		return NodeStats{}, false, s.loadErr
	}
	return s.StatsStore.LoadStats(node)
}

func (s *testStore) SaveStats(node string, st NodeStats) error {
	if s.saveErr != nil {
		return s.saveErr
	}
	s.saves++
	return s.StatsStore.SaveStats(node, st)
}
