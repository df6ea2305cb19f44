package privacy

import (
	"math"
	"testing"
)

// opacusOrders is Opacus' RDPAccountant.DEFAULT_ALPHAS.
func opacusOrders() []float64 {
	var o []float64
	for x := 1; x < 100; x++ {
		o = append(o, 1+float64(x)/10)
	}
	for a := 12; a < 64; a++ {
		o = append(o, float64(a))
	}
	return o
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

// Published values: TensorFlow Privacy compute_dp_sgd_privacy_test.py
// (orders = DefaultOrders, steps = ceil(epochs·n/batch), q = batch/n) and
// Opacus accountants_test.py (its own default orders).
func TestAccountantPublishedEpsilon(t *testing.T) {
	cases := []struct {
		name      string
		z, q      float64
		steps     int
		delta     float64
		orders    []float64
		wantEps   float64
		wantOrder float64
	}{
		{"tfp/mnist n=60000 b=150 z=1.3 15 epochs", 1.3, 150.0 / 60000, 6000, 1e-5, nil, 0.7242234026109595, 19},
		{"tfp n=1e5 b=100 z=1.0 30 epochs", 1.0, 100.0 / 100000, 30000, 1e-7, nil, 1.4154988495444842, 13},
		{"tfp n=1e8 b=1024 z=0.1 10 epochs", 0.1, 1024.0 / 1e8, int(math.Ceil(10 * 1e8 / 1024)), 1e-7, nil, 5907982.3113978775, 1.25},
		{"opacus z=1.5 q=0.04 90 epochs", 1.5, 0.04, int(90 / 0.04), 1e-5, opacusOrders(), 7.32911117143, 0},
	}
	for _, c := range cases {
		a := NewAccountant(c.orders)
		if err := a.Compose(c.z, c.q, c.steps); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		eps, order := a.Epsilon(c.delta)
		if relErr(eps, c.wantEps) > 1e-4 {
			t.Errorf("%s: ε = %.10g, want %.10g (rel err %.2g)", c.name, eps, c.wantEps, relErr(eps, c.wantEps))
		}
		if c.wantOrder != 0 && order != c.wantOrder {
			t.Errorf("%s: best order %v, want %v", c.name, order, c.wantOrder)
		}
		t.Logf("%s: ε = %.12g (order %v), rel err %.2g", c.name, eps, order, relErr(eps, c.wantEps))
	}
}
