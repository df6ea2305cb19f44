package defense

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/dafnet/daf/adapter"
	"pgregory.net/rapid"
)

// A random stream of honest, boosted, shrunk, flipped, noisy and broken
// updates from a handful of nodes: whatever the detector decides, only an
// Accepted verdict may change the source's statistics (by exactly one
// accepted update), weights match outcomes, and stored statistics stay
// well formed.
func TestPropertyStatsOnlyChangeOnAccept(t *testing.T) {
	seen := map[Reason]int{}
	defer func() {
		// The stream must reach every check, or the property says little.
		for _, r := range []Reason{NoReason, ExcessiveMagnitude, DirectionAnomaly, GroupNormOutOfRange, NonFinite} {
			if seen[r] == 0 {
				t.Errorf("no verdict with reason %s in the random streams", r)
			}
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		cfg := DefaultConfig()
		cfg.WarmupUpdates = rapid.IntRange(0, 4).Draw(t, "warmup")
		cfg.DirectionFlipThreshold = rapid.IntRange(0, 6).Draw(t, "flips")
		cfg.RangeK = rapid.Float64Range(0.5, 6).Draw(t, "k")
		store := NewMemoryStatsStore()
		d := NewDetector(cfg, store)
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1))
		nodes := []string{"a", "b", "c", "d", "e"}
		base := map[string]*adapter.Update{}
		for _, n := range nodes {
			base[n] = randomVec(rng, n, 16, 1)
		}
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for range steps {
			n := rapid.SampledFrom(nodes).Draw(t, "node")
			u := base[n].Clone()
			data := u.Groups["coarse"]["layers.0.q_proj.lora_A.weight"].Data
			switch rapid.IntRange(0, 6).Draw(t, "kind") {
			case 1:
				for i := range data {
					data[i] *= float32(rapid.Float64Range(2, 50).Draw(t, "boost"))
				}
			case 2:
				for i := range data {
					data[i] *= -1
				}
			case 3:
				for i := range data {
					data[i] = float32(rng.NormFloat64())
				}
			case 4:
				data[rng.IntN(len(data))] = float32(math.NaN())
			case 5:
				for i := range data {
					data[i] *= 0.01
				}
			default:
				for i := range data {
					data[i] += float32(0.3 * rng.NormFloat64())
				}
			}
			before, _, _ := store.LoadStats(n)
			v, err := d.Validate(u)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			after, _, _ := store.LoadStats(n)
			seen[v.Reason]++
			switch v.Outcome {
			case Accepted:
				if v.Weight != 1 || after.Accepted != before.Accepted+1 {
					t.Fatalf("accepted with weight %v, accepted count %d → %d", v.Weight, before.Accepted, after.Accepted)
				}
			case Suspicious:
				if !(v.Weight > 0 && v.Weight <= SuspiciousWeight) {
					t.Fatalf("suspicious weight %v", v.Weight)
				}
				fallthrough
			case Rejected:
				if v.Outcome == Rejected && v.Weight != 0 {
					t.Fatalf("rejected weight %v", v.Weight)
				}
				if !reflect.DeepEqual(before, after) {
					t.Fatalf("%v changed stats:\n%+v\n%+v", v, before, after)
				}
			}
			if err := after.check(); err != nil {
				t.Fatalf("stored stats malformed: %v", err)
			}
			if after.Flips() > cfg.DirectionFlipThreshold {
				t.Fatalf("%d accepted flips stored, threshold %d", after.Flips(), cfg.DirectionFlipThreshold)
			}
		}
	})
}

// The sketch is linear, deterministic, and its cosine follows the exact
// cosine (the slow reference) within a few standard errors.
func TestPropertySketchCosine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 2))
		n := rapid.IntRange(50, 4000).Draw(t, "n")
		mix := rapid.Float64Range(-1, 1).Draw(t, "mix")
		a := randomVec(rng, "a", n, 1)
		noise := randomVec(rng, "b", n, 1)
		b := a.Clone()
		bd := b.Groups["coarse"]["layers.0.q_proj.lora_A.weight"].Data
		nd := noise.Groups["coarse"]["layers.0.q_proj.lora_A.weight"].Data
		for i := range bd {
			bd[i] = float32(mix*float64(bd[i]) + (1-math.Abs(mix))*float64(nd[i]))
		}
		var ab, aa, bb float64
		ad := a.Groups["coarse"]["layers.0.q_proj.lora_A.weight"].Data
		for i := range ad {
			ab += float64(ad[i]) * float64(bd[i])
			aa += float64(ad[i]) * float64(ad[i])
			bb += float64(bd[i]) * float64(bd[i])
		}
		exact := ab / math.Sqrt(aa*bb)
		sa, sb := sketch(a), sketch(b)
		if !normalize(sa) || !normalize(sb) {
			t.Fatal("zero sketch of a non-zero vector")
		}
		if got := dot(sa, sb); math.Abs(got-exact) > 0.2 {
			t.Fatalf("sketch cosine %.3f, exact %.3f", got, exact)
		}
		// Linearity: sketch(a) + sketch(b) = sketch(a + b).
		sum := a.Clone()
		sd := sum.Groups["coarse"]["layers.0.q_proj.lora_A.weight"].Data
		for i := range sd {
			sd[i] += bd[i]
		}
		ra, rb, rs := sketch(a), sketch(b), sketch(sum)
		for i := range rs {
			if math.Abs(ra[i]+rb[i]-rs[i]) > 1e-4*(1+math.Abs(rs[i])) {
				t.Fatalf("bucket %d: %v + %v != %v", i, ra[i], rb[i], rs[i])
			}
		}
	})
}

func TestSketchDependsOnNamesNotOrder(t *testing.T) {
	a := vec("a", 1, 2, 3)
	b := vec("b", 1, 2, 3)
	if !reflect.DeepEqual(sketch(a), sketch(b)) {
		t.Error("sketch depends on the source node")
	}
	c := groupVec("a", "fine", 1, 2, 3)
	if reflect.DeepEqual(sketch(a), sketch(c)) {
		t.Error("the same values in another group sketch identically")
	}
}

func TestPropertyReputationInUnitInterval(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := ReputationParams{
			ValidReward:      rapid.Float64Range(0, 1).Draw(t, "reward"),
			InvalidPenalty:   rapid.Float64Range(0, 1).Draw(t, "penalty"),
			Neutral:          rapid.Float64Range(0, 1).Draw(t, "neutral"),
			ProbationStart:   rapid.Float64Range(0, 1).Draw(t, "start"),
			ProbationUpdates: rapid.Uint64Range(0, 5).Draw(t, "probation"),
			DecayHalfLife:    time.Duration(rapid.Int64Range(1, 1e13).Draw(t, "halflife")),
		}
		r := NewReputation(p)
		peers := []string{"p", "q", "r"}
		for range rapid.IntRange(1, 200).Draw(t, "ops") {
			peer := rapid.SampledFrom(peers).Draw(t, "peer")
			before := r.Get(peer)
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				r.Reward(peer)
				if r.Get(peer) < before {
					t.Fatalf("reward lowered %v → %v", before, r.Get(peer))
				}
			case 1:
				r.Penalize(peer)
				if r.Get(peer) > before {
					t.Fatalf("penalty raised %v → %v", before, r.Get(peer))
				}
			case 2:
				s := r.Snapshot().Peers[peer]
				target := p.Neutral
				if s.Valid < p.ProbationUpdates {
					target = p.ProbationStart
				}
				r.Decay(peer, rapidDuration(t))
				after := r.Get(peer)
				if math.Abs(after-target) > math.Abs(before-target)+1e-12 {
					t.Fatalf("decay moved %v away from %v to %v", before, target, after)
				}
			case 3:
				r2 := NewReputation(p)
				if err := r2.Restore(r.Snapshot()); err != nil {
					t.Fatalf("restore own snapshot: %v", err)
				}
				r = r2
			}
			for _, q := range peers {
				if g := r.Get(q); !(g >= 0 && g <= 1) {
					t.Fatalf("reputation of %s = %v", q, g)
				}
			}
		}
	})
}

func rapidDuration(t *rapid.T) time.Duration {
	return time.Duration(rapid.Int64Range(-1e12, 1e15).Draw(t, "silence"))
}
