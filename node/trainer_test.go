package node

import (
	"context"
	"math"
	"testing"

	"github.com/dafnet/daf/adapter"
)

func nan() float64 { return math.NaN() }

func TestPullTrainerConvergesGeometrically(t *testing.T) {
	tr := NewPullTrainer(0.3, 2, 4, 3, 10)
	ctx := context.Background()
	var cur *adapter.Update
	d0 := Distance(tr.Target, cur)
	for round := uint64(1); round <= 3; round++ {
		delta, err := tr.Train(ctx, round, cur)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkTrained(delta, round); err != nil {
			t.Fatal(err)
		}
		if delta.Meta.Samples != 10 || delta.Meta.Quality["coarse"].PPLAfter >= delta.Meta.Quality["coarse"].PPLBefore {
			t.Fatalf("round %d meta %+v", round, delta.Meta)
		}
		if cur == nil {
			cur = delta
		} else {
			for _, g := range delta.GroupNames() {
				for _, k := range delta.Keys(g) {
					for i, v := range delta.Get(g, k).Data {
						cur.Get(g, k).Data[i] += v
					}
				}
			}
		}
		// Rate 0.5: the distance halves each round.
		want := d0 * math.Pow(0.5, float64(round))
		if got := Distance(tr.Target, cur); math.Abs(got-want) > 1e-5*d0 {
			t.Fatalf("round %d: distance %v, want %v", round, got, want)
		}
	}
	m, err := tr.Evaluate(ctx, cur)
	if err != nil || math.Abs(m["distance"]-d0/8) > 1e-5*d0 {
		t.Fatalf("Evaluate = %v, %v; want distance %v", m, err, d0/8)
	}
}

func TestCheckTrainedRefusesBadUpdates(t *testing.T) {
	good := NewPullTrainer(0.1, 1, 2, 2, 5).Target.Clone()
	good.Meta.Samples = 5
	if err := checkTrained(good, 1); err != nil {
		t.Fatal(err)
	}
	bad := good.Clone()
	bad.Meta.Samples = 0
	if checkTrained(bad, 1) == nil {
		t.Error("zero samples accepted")
	}
	bad = good.Clone()
	bad.Get("fine", "base_model.model.layers.0.attn.q_proj.lora_A.weight").Data[0] = float32(math.Inf(1))
	if checkTrained(bad, 1) == nil {
		t.Error("infinite value accepted")
	}
	if checkTrained(adapter.New(), 1) == nil {
		t.Error("empty update accepted")
	}
	if checkTrained(nil, 1) == nil {
		t.Error("nil update accepted")
	}
}
