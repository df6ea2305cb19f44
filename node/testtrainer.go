package node

import (
	"context"
	"fmt"
	"math"

	"github.com/dafnet/daf/adapter"
)

// PullTrainer is a small deterministic trainer: each node pulls its adapter
// towards its own fixed target, so a federation of them has a known optimum
// (the mean of the targets, for weighted averaging) and a test can check
// that rounds move every node towards it. The tensors have the shapes of a
// real TALoRA bank: lora_A r×in and lora_B out×r per group.
type PullTrainer struct {
	// Target is this node's optimum, the same key set every round.
	Target *adapter.Update
	// Rate is the fraction of the distance to Target one round covers (0,1].
	Rate float64
	// Samples is reported as the update's sample count.
	Samples float64
}

// NewPullTrainer builds a trainer whose target has every value of group g
// equal to base + offset(g), with shapes r×in / out×r on one module per
// group. Distinct bases give distinct nodes.
func NewPullTrainer(base float32, rank, in, out int, samples float64) *PullTrainer {
	target := adapter.New()
	for i, g := range adapter.DefaultGroups {
		a := adapter.NewTensor(rank, in)
		b := adapter.NewTensor(out, rank)
		for j := range a.Data {
			a.Data[j] = base + float32(i)*0.1 + float32(j%7)*0.01
		}
		for j := range b.Data {
			b.Data[j] = base - float32(i)*0.1 - float32(j%5)*0.01
		}
		target.Set(g.Name, "base_model.model.layers.0.attn.q_proj.lora_A.weight", a)
		target.Set(g.Name, "base_model.model.layers.0.attn.q_proj.lora_B.weight", b)
	}
	return &PullTrainer{Target: target, Rate: 0.5, Samples: samples}
}

// Train returns Rate × (Target − current) as a delta.
func (p *PullTrainer) Train(ctx context.Context, round uint64, current *adapter.Update) (*adapter.Update, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !(p.Rate > 0 && p.Rate <= 1) {
		return nil, fmt.Errorf("pull trainer: rate %v outside (0, 1]", p.Rate)
	}
	delta := adapter.New()
	delta.Meta.Samples = p.Samples
	delta.Meta.Round = round
	delta.Meta.Quality = map[string]adapter.GroupQuality{}
	for _, g := range p.Target.GroupNames() {
		var before, after float64
		for _, k := range p.Target.Keys(g) {
			t := p.Target.Get(g, k)
			d := adapter.NewTensor(t.Shape...)
			var cur *adapter.Tensor
			if current != nil {
				cur = current.Get(g, k)
				if cur != nil && !cur.SameShape(t) {
					return nil, fmt.Errorf("pull trainer: %s/%s has shape %v, target %v", g, k, cur.Shape, t.Shape)
				}
			}
			for i, v := range t.Data {
				c := float32(0)
				if cur != nil {
					c = cur.Data[i]
				}
				d.Data[i] = float32(p.Rate) * (v - c)
				before += float64(v-c) * float64(v-c)
				rest := float64(v-c) * (1 - p.Rate)
				after += rest * rest
			}
			delta.Set(g, k, d)
		}
		// A perplexity-like figure that falls as the adapter nears the
		// target: exp of the mean squared distance.
		n := float64(max(1, groupSize(p.Target, g)))
		delta.Meta.Quality[g] = adapter.GroupQuality{PPLBefore: math.Exp(before / n), PPLAfter: math.Exp(after / n)}
	}
	return delta, nil
}

// Evaluate reports the squared distance to the target ("distance") overall.
func (p *PullTrainer) Evaluate(ctx context.Context, current *adapter.Update) (map[string]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return map[string]float64{"distance": Distance(p.Target, current)}, nil
}

func groupSize(u *adapter.Update, g string) int {
	n := 0
	for _, t := range u.Groups[g] {
		n += len(t.Data)
	}
	return n
}

// Distance is the Euclidean distance between two updates over a's tensors;
// a missing tensor in b counts as zeros.
func Distance(a, b *adapter.Update) float64 {
	var s float64
	for _, g := range a.GroupNames() {
		for _, k := range a.Keys(g) {
			ta := a.Get(g, k)
			var tb *adapter.Tensor
			if b != nil {
				tb = b.Get(g, k)
			}
			for i, v := range ta.Data {
				w := float32(0)
				if tb != nil && i < len(tb.Data) {
					w = tb.Data[i]
				}
				d := float64(v) - float64(w)
				s += d * d
			}
		}
	}
	return math.Sqrt(s)
}
