package sim

import (
	"math"

	"github.com/dafnet/daf/adapter"
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

func distance(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}
