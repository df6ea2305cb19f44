package sim

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/round"
)

// The simulated model is one parameter vector per node, carried in an update
// as a single tensor (daf.kind = adapter: the whole adapter after local
// training). Each node's data pulls its model towards the node's own
// target; averaging the models (FedAvg) drives every node towards the
// sample-weighted mean of the targets and makes nodes that drifted apart
// (a partition) meet again. That gives the scenario tests numbers to check:
// distance to the mean target and between nodes.
const (
	modelGroup = "coarse"
	modelKey   = "base_model.model.layer.lora_A.weight"
	// learningRate of the simulated local training: the update is this share
	// of the way from the current model to the node's target.
	learningRate = 0.5
)

// TrainUpdate is the simulated local training result: the model moved
// learningRate of the way towards the target (times scale, which is 1 for
// an honest node).
func TrainUpdate(model, target []float32, samples float64, scale float32) *adapter.Update {
	t := adapter.NewTensor(len(model))
	for i := range model {
		t.Data[i] = scale * (model[i] + learningRate*(target[i]-model[i]))
	}
	u := adapter.New()
	u.Meta.Kind = adapter.KindAdapter
	u.Meta.Samples = samples
	u.Set(modelGroup, modelKey, t)
	return u
}

// Aggregate is a sample-weighted mean of the contributions' tensors, the
// weights renormalised over exactly the updates given. It stands in for
// package aggregate in the simulator.
func Aggregate(cs []round.Contribution) (*adapter.Update, error) {
	if len(cs) == 0 {
		return nil, fmt.Errorf("aggregate: no contributions")
	}
	var total float64
	for _, c := range cs {
		total += c.Update.Meta.Samples
	}
	if !(total > 0) {
		return nil, fmt.Errorf("aggregate: total sample count %v", total)
	}
	out := adapter.New()
	for _, c := range cs {
		w := c.Update.Meta.Samples / total
		for _, g := range c.Update.GroupNames() {
			for _, k := range c.Update.Keys(g) {
				src := c.Update.Groups[g][k]
				dst := out.Get(g, k)
				if dst == nil {
					dst = adapter.NewTensor(src.Shape...)
					out.Set(g, k, dst)
				}
				if !dst.SameShape(src) {
					return nil, fmt.Errorf("aggregate: %s/%s from %s has shape %v, want %v", g, k, c.Source, src.Shape, dst.Shape)
				}
				for i, v := range src.Data {
					dst.Data[i] += float32(w) * v
				}
			}
		}
	}
	out.Meta.Samples = total
	out.Meta.Kind = adapter.KindAdapter
	return out, nil
}

// NormFilter is the simulator's Byzantine filter: an update whose joint L2
// norm exceeds Multiplier × the median norm of the updates it accepted
// before (its own node's included, via Observe) is refused. It stands in
// for defense.Detector. Safe for concurrent use.
type NormFilter struct {
	Multiplier float64
	mu         sync.Mutex
	norms      []float64
}

// historyLen bounds the norms kept, so the reference follows the model as
// training converges.
const historyLen = 32

// Observe records a norm known to be honest (the node's own update).
func (f *NormFilter) Observe(norm float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.push(norm)
}

func (f *NormFilter) push(norm float64) {
	f.norms = append(f.norms, norm)
	if len(f.norms) > historyLen {
		f.norms = f.norms[len(f.norms)-historyLen:]
	}
}

// Check implements gossip.Filter.
func (f *NormFilter) Check(source gossip.PeerID, r uint64, scope gossip.Membership, u *adapter.Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	norm := u.L2()
	if len(f.norms) > 0 {
		s := slices.Clone(f.norms)
		slices.Sort(s)
		med := s[len(s)/2]
		if med > 0 && norm > f.Multiplier*med {
			return fmt.Errorf("%w: update of %s for round %d has norm %.4g, %.1f× the median %.4g (limit %.1f×)",
				gossip.ErrByzantine, source, r, norm, norm/med, f.Multiplier, f.Multiplier)
		}
	}
	f.push(norm)
	return nil
}

func distance(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}
