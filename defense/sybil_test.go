package defense_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/defense/attack"
	"pgregory.net/rapid"
)

func honestRound(seed uint64, nodes int) []*adapter.Update {
	rng := rand.New(rand.NewPCG(seed, 99))
	return attack.HonestNonIID(rng, nodes, 1, attack.DefaultHonestParams())[0]
}

func TestSybilClonesFlaggedAllButSmallestID(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	honest := honestRound(3, 10)
	clones := attack.SybilClones(honest[0], 5, 0.01, rng)
	got := defense.DetectSybil(append(append([]*adapter.Update(nil), honest[1:]...), clones...), defense.DefaultConfig())
	want := []string{"honest-00-sybil-1", "honest-00-sybil-2", "honest-00-sybil-3", "honest-00-sybil-4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flagged %v, want %v", got, want)
	}
}

func TestSybilClusterSizeThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	honest := honestRound(4, 8)
	cfg := defense.DefaultConfig()
	// Three clones: not "more than 3".
	three := attack.SybilClones(honest[0], 3, 0.01, rng)
	if got := defense.DetectSybil(append(honest[1:], three...), cfg); len(got) != 0 {
		t.Errorf("cluster of 3 flagged: %v", got)
	}
	cfg.SybilMinCluster = 3
	if got := defense.DetectSybil(append(honest[1:], three...), cfg); len(got) != 2 {
		t.Errorf("SybilMinCluster 3: flagged %v, want 2", got)
	}
}

func TestSybilSimilarityThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	u := honestRound(5, 1)[0]
	// perturb 0.2: cosine between clones about 1/(1+0.04) ≈ 0.96.
	loose := attack.SybilClones(u, 6, 0.2, rng)
	cfg := defense.DefaultConfig()
	if got := defense.DetectSybil(loose, cfg); len(got) != 0 {
		t.Errorf("clones at cosine ≈ 0.96 flagged at threshold 0.99: %v", got)
	}
	cfg.SybilSimilarity = 0.9
	if got := defense.DetectSybil(loose, cfg); len(got) != 5 {
		t.Errorf("threshold 0.9: flagged %v, want 5", got)
	}
}

func TestSybilHonestNonIIDNotFlagged(t *testing.T) {
	for seed := range uint64(5) {
		if got := defense.DetectSybil(honestRound(seed, 40), defense.DefaultConfig()); len(got) != 0 {
			t.Errorf("seed %d: honest nodes flagged: %v", seed, got)
		}
	}
}

func TestSybilIgnoresUpdatesWithoutDirection(t *testing.T) {
	var us []*adapter.Update
	for i := range 5 {
		u := adapter.New()
		u.Meta.Node = fmt.Sprintf("z%d", i)
		u.Set("coarse", "k", adapter.NewTensor(4))
		us = append(us, u)
	}
	nan := us[0].Clone()
	nan.Meta.Node = "nan"
	nan.Groups["coarse"]["k"].Data[0] = float32(math.NaN())
	us = append(us, nan, nil)
	if got := defense.DetectSybil(us, defense.DefaultConfig()); len(got) != 0 {
		t.Errorf("zero, NaN and nil updates flagged: %v", got)
	}
}

func TestSybilComparesSharedTensorsOnly(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	u := honestRound(6, 1)[0]
	clones := attack.SybilClones(u, 4, 0.001, rng)
	// One clone carries an extra tensor as large as the rest of the update:
	// its cosine with the others drops to about 1/√2.
	big := adapter.NewTensor(4)
	for i := range big.Data {
		big.Data[i] = float32(u.L2() / 2)
	}
	clones[3].Set("coarse", "extra", big)
	if got := defense.DetectSybil(clones, defense.DefaultConfig()); len(got) != 0 {
		t.Errorf("a clone with a large extra tensor still linked: %v", got)
	}
	// A reshaped tensor is not compared value by value.
	clones = attack.SybilClones(u, 4, 0.001, rng)
	for _, c := range clones[:1] {
		for _, k := range c.Keys("coarse") {
			tt := c.Groups["coarse"][k]
			tt.Shape = []int{tt.NumElements()}
		}
	}
	if got := defense.DetectSybil(clones, defense.DefaultConfig()); len(got) != 0 {
		t.Errorf("reshaped clone linked: %v", got)
	}
}

// Every node must flag the same ids whatever order gossip delivered the
// updates in.
func TestPropertySybilOrderInvariant(t *testing.T) {
	base := honestRound(7, 8)
	rng := rand.New(rand.NewPCG(7, 8))
	all := append(append([]*adapter.Update(nil), base...), attack.SybilClones(base[2], 5, 0.01, rng)...)
	all = append(all, attack.SybilClones(base[5], 4, 0.02, rng)...)
	want := defense.DetectSybil(all, defense.DefaultConfig())
	// The originals join their clones' clusters and are the ones kept.
	if len(want) != 5+4 || want[0] != "honest-02-sybil-0" {
		t.Fatalf("flagged %v, want the 9 clones", want)
	}
	rapid.Check(t, func(t *rapid.T) {
		perm := rapid.Permutation(all).Draw(t, "order")
		if got := defense.DetectSybil(perm, defense.DefaultConfig()); !reflect.DeepEqual(got, want) {
			t.Fatalf("order changed the result: %v, want %v", got, want)
		}
	})
}

func TestSybilInvalidThresholdsFallBackToDefaults(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	honest := honestRound(9, 12)
	clones := attack.SybilClones(honest[0], 4, 0.01, rng)
	all := append(honest[1:], clones...)
	want := defense.DetectSybil(all, defense.DefaultConfig())
	if len(want) != 3 {
		t.Fatalf("default config flagged %v", want)
	}
	for _, cfg := range []defense.Config{{}, {SybilSimilarity: math.NaN(), SybilMinCluster: 4}, {SybilSimilarity: -1, SybilMinCluster: 1}} {
		if got := defense.DetectSybil(all, cfg); !reflect.DeepEqual(got, want) {
			t.Errorf("config %+v: flagged %v, want the defaults' %v", cfg, got, want)
		}
	}
}
