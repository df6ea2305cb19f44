package attack

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/dafnet/daf/adapter"
)

// HonestParams shapes the honest updates of HonestNonIID. Norms and
// offsets are relative to the group's norm, so the geometry does not depend
// on the model size.
type HonestParams struct {
	// Layers, Dim and Rank give the LoRA shapes: per layer and per group a
	// q_proj and a v_proj module, lora_A Rank×Dim and lora_B Dim×Rank.
	Layers, Dim, Rank int
	// GroupNorm is the typical norm of each timestep group's update in
	// round 0; the groups generated are its keys.
	GroupNorm map[string]float64
	// NormDecay multiplies every norm once per round (training converges).
	NormDecay float64
	// NodeScaleSpread is σ of the log-normal per-node norm factor (sites
	// with more data or a larger learning rate move further).
	NodeScaleSpread float64
	// RoundJitter is σ of the log-normal per-update norm factor.
	RoundJitter float64
	// DomainOffset is the norm of a node's fixed offset from the shared
	// direction, relative to the shared direction's (non-IID data).
	DomainOffset float64
	// Noise is the norm of each update's fresh noise, relative to the
	// shared direction's (SGD noise).
	Noise float64
	// Drift is the relative norm of the random step the shared direction
	// takes each round.
	Drift float64
}

// DefaultHonestParams: a small two-layer model of rank 4, groups with the
// coarse group moving most, norms shrinking 3 % per round, node scales
// within about ±30 %, per-update jitter about ±10 %, a strong domain
// offset and SGD noise as large as the signal (so two updates of one node
// have cosine ≈ 0.6 and of two nodes ≈ 0.4).
func DefaultHonestParams() HonestParams {
	return HonestParams{
		Layers: 2, Dim: 32, Rank: 4,
		GroupNorm:       map[string]float64{"coarse": 1.0, "domain": 0.6, "fine": 0.3},
		NormDecay:       0.97,
		NodeScaleSpread: 0.3,
		RoundJitter:     0.1,
		DomainOffset:    0.8,
		Noise:           1.0,
		Drift:           0.1,
	}
}

// HonestNodeID names honest node i.
func HonestNodeID(i int) string { return fmt.Sprintf("honest-%02d", i) }

// HonestNonIID returns honest updates indexed [round][node]: node i is
// HonestNodeID(i), its round r update has Meta.Round = r and a fixed
// sample count in [50, 500). Deterministic given rng.
func HonestNonIID(rng *rand.Rand, nodes, rounds int, p HonestParams) [][]*adapter.Update {
	if nodes <= 0 || rounds <= 0 {
		return nil
	}
	groups := sortedGroupNames(p.GroupNorm)
	size := p.Layers * 2 * 2 * p.Rank * p.Dim // per group: modules × (A + B)
	shared := make(map[string][]float64, len(groups))
	offsets := make([]map[string][]float64, nodes)
	for _, g := range groups {
		shared[g] = randomUnit(rng, size)
	}
	scales := make([]float64, nodes)
	samples := make([]float64, nodes)
	for i := range nodes {
		offsets[i] = make(map[string][]float64, len(groups))
		for _, g := range groups {
			offsets[i][g] = scaled(randomUnit(rng, size), p.DomainOffset)
		}
		scales[i] = math.Exp(p.NodeScaleSpread * rng.NormFloat64())
		samples[i] = float64(50 + rng.IntN(450))
	}
	out := make([][]*adapter.Update, rounds)
	decay := 1.0
	for r := range rounds {
		if r > 0 {
			decay *= p.NormDecay
			for _, g := range groups {
				step := scaled(randomUnit(rng, size), p.Drift)
				s := shared[g]
				for j := range s {
					s[j] += step[j]
				}
				unitize(s)
			}
		}
		out[r] = make([]*adapter.Update, nodes)
		for i := range nodes {
			u := adapter.New()
			u.Meta.Node = HonestNodeID(i)
			u.Meta.Round = uint64(r)
			u.Meta.Samples = samples[i]
			for _, g := range groups {
				noise := scaled(randomUnit(rng, size), p.Noise)
				s, o := shared[g], offsets[i][g]
				v := make([]float64, size)
				for j := range v {
					v[j] = s[j] + o[j] + noise[j]
				}
				target := p.GroupNorm[g] * decay * scales[i] * math.Exp(p.RoundJitter*rng.NormFloat64())
				unitize(v)
				setLoRA(u, g, p, scaled(v, target))
			}
			out[r][i] = u
		}
	}
	return out
}

// setLoRA lays a flat group vector out as PEFT-named LoRA factors.
func setLoRA(u *adapter.Update, group string, p HonestParams, v []float64) {
	pos := 0
	take := func(shape ...int) *adapter.Tensor {
		t := adapter.NewTensor(shape...)
		for i := range t.Data {
			t.Data[i] = float32(v[pos])
			pos++
		}
		return t
	}
	for l := range p.Layers {
		for _, m := range []string{"q_proj", "v_proj"} {
			base := fmt.Sprintf("base_model.model.layers.%d.attn.%s", l, m)
			u.Set(group, base+".lora_A.weight", take(p.Rank, p.Dim))
			u.Set(group, base+".lora_B.weight", take(p.Dim, p.Rank))
		}
	}
}

func randomUnit(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for {
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		if unitize(v) {
			return v
		}
	}
}

func unitize(v []float64) bool {
	var s float64
	for _, x := range v {
		s += x * x
	}
	if s == 0 {
		return false
	}
	n := math.Sqrt(s)
	for i := range v {
		v[i] /= n
	}
	return true
}

func scaled(v []float64, f float64) []float64 {
	for i := range v {
		v[i] *= f
	}
	return v
}

func sortedGroupNames(m map[string]float64) []string {
	return slices.Sorted(maps.Keys(m))
}
