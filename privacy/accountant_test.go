package privacy

import (
	"errors"
	"math"
	"testing"

	"pgregory.net/rapid"
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

// TensorFlow Privacy rdp_accountant_test.py, test_compute_rdp_sequence
// (q=0.01, z=2.5, 50 steps; absolute tolerance 1e-5 there), and
// dp_accounting's test_compute_rdp_poisson_sampled_gaussian for the same
// case (rtol 1e-4). dp_accounting's current fractional-order series adds the
// absolute values of the alternating terms, an upper bound: at order 1.5 it
// publishes 6.7058e-4 where the exact series, Opacus and the defining
// integral (TestLogAAgainstIntegral) give 6.5007e-4. We keep the exact
// value and check that we never exceed dp_accounting's.
func TestRDPPublishedVector(t *testing.T) {
	orders := []float64{1.5, 2.5, 5, 50, 100}
	tfPrivacy := []float64{0.00065, 0.001085, 0.00218075, 0.023846, 167.416307}
	dpAccounting := []float64{6.70579741e-04, 1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e02}
	a := NewAccountant(orders)
	if err := a.Compose(2.5, 0.01, 50); err != nil {
		t.Fatal(err)
	}
	for i, r := range a.RDP() {
		if math.Abs(r-tfPrivacy[i]) > 1e-5 {
			t.Errorf("order %v: RDP %.10g, TensorFlow Privacy %.10g", orders[i], r, tfPrivacy[i])
		}
		if r > dpAccounting[i]*(1+1e-6) || (orders[i] != 1.5 && relErr(r, dpAccounting[i]) > 1e-4) {
			t.Errorf("order %v: RDP %.10g, dp_accounting %.10g", orders[i], r, dpAccounting[i])
		}
	}
	if got := a.RDP()[0]; math.Abs(got-6.5007e-4) > 1e-8 {
		t.Errorf("order 1.5: RDP %.10g, want the exact 6.5007e-4", got)
	}
	// TensorFlow Privacy rdp_accountant_test.py, test_compute_rdp_scalar.
	b := NewAccountant([]float64{5})
	if err := b.Compose(2, 0.1, 10); err != nil {
		t.Fatal(err)
	}
	if r := b.RDP()[0]; math.Abs(r-0.07737) > 5e-6 {
		t.Errorf("q=0.1 z=2 10 steps order 5: RDP %v, want 0.07737", r)
	}
}

// TensorFlow Privacy and dp_accounting: constant RDP (pure DP) over orders
// 2…32 at δ=1e-5 gives ε = 1.32783806176 at order 32.
func TestEpsilonFromRDPPublishedPureDP(t *testing.T) {
	var orders, rdp []float64
	for a := 2; a <= 32; a++ {
		orders = append(orders, float64(a))
		rdp = append(rdp, 1.1)
	}
	eps, order := epsilonFromRDP(orders, rdp, 1e-5)
	if math.Abs(eps-1.32783806176) > 1e-9 || order != 32 {
		t.Errorf("ε = %.12g at order %v, want 1.32783806176 at 32", eps, order)
	}
}

// TensorFlow Privacy and dp_accounting: the Gaussian mechanism with noise
// multiplier 4.530877117, no sampling, is exactly (1, 1e-6)-DP; with a fine
// order grid the RDP conversion recovers ε ≈ 1.
func TestEpsilonPublishedGaussianFineOrders(t *testing.T) {
	var orders []float64
	for i := 1001; i < 100000; i++ {
		orders = append(orders, 0.001*float64(i))
	}
	a := NewAccountant(orders)
	if err := a.Compose(4.530877117, 1, 1); err != nil {
		t.Fatal(err)
	}
	eps, _ := a.Epsilon(1e-6)
	if math.Abs(eps-1) > 1e-6 {
		t.Errorf("ε = %.10g, want 1", eps)
	}
}

// logAByIntegration is the slow, obvious reference for log A_α: the
// defining integral E_{x~N(0,z²)}[(1-q+q·e^{(2x-1)/(2z²)})^α] by the
// trapezoid rule on a grid fine against z, over a range that holds the
// whole mass (the integrand peaks between 0 and α). The integrand is
// evaluated in log space and scaled by its maximum.
func logAByIntegration(q, z, alpha float64) float64 {
	lo, hi := -40*z-1, alpha+40*z+1
	h := z / 40
	n := int((hi-lo)/h) + 1
	logf := make([]float64, n)
	maxLog := math.Inf(-1)
	for i := range logf {
		x := lo + float64(i)*h
		logPDF := -x*x/(2*z*z) - math.Log(z*math.Sqrt(2*math.Pi))
		mix := logAdd(math.Log1p(-q), math.Log(q)+(2*x-1)/(2*z*z))
		logf[i] = logPDF + alpha*mix
		maxLog = math.Max(maxLog, logf[i])
	}
	var sum float64
	for i, lf := range logf {
		w := 1.0
		if i == 0 || i == n-1 {
			w = 0.5
		}
		sum += w * math.Exp(lf-maxLog)
	}
	return maxLog + math.Log(sum*h)
}

// The parameter sets of dp_accounting's test_compute_log_a_equals_mp
// (log A against a multi-precision integral, rtol 1e-4, atol 1e-8), plus a
// few more, against the integral above.
func TestLogAAgainstIntegral(t *testing.T) {
	cases := []struct{ q, z, alpha float64 }{
		{1e-7, .1, 1.01}, {1e-6, .1, 256}, {1e-5, .1, 256.1}, {1e-6, 1, 27}, {1e-4, 1, 1.5},
		{1e-3, 1, 2}, {.01, 10, 20}, {.1, 100, 20.5}, {.99, .1, 256}, {.999, 100, 256.1},
		{0.5, 1, 1.25}, {0.5, 1, 7.5}, {0.2, 0.7, 3.3}, {0.05, 2, 63}, {0.3, 5, 1.0001},
	}
	for _, c := range cases {
		var got float64
		if c.alpha == math.Trunc(c.alpha) {
			got = logAIntegerOrder(c.q, c.z, int(c.alpha))
		} else {
			got = logAFractionalOrder(c.q, c.z, c.alpha)
		}
		want := logAByIntegration(c.q, c.z, c.alpha)
		if math.Abs(got-want) > 1e-8+1e-4*math.Abs(want) {
			t.Errorf("q=%v z=%v α=%v: log A = %.12g, integral %.12g", c.q, c.z, c.alpha, got, want)
		}
	}
}

// The integer-order series against the plain binomial sum in linear space,
// where that sum does not overflow.
func TestLogAIntegerAgainstDirectSum(t *testing.T) {
	for _, q := range []float64{0.001, 0.01, 0.1, 0.5, 0.9} {
		for _, z := range []float64{0.8, 1, 2, 5} {
			for _, alpha := range []int{2, 3, 5, 10, 20} {
				var sum float64
				for i := 0; i <= alpha; i++ {
					binom := 1.0
					for k := 1; k <= i; k++ {
						binom = binom * float64(alpha-k+1) / float64(k)
					}
					sum += binom * math.Pow(q, float64(i)) * math.Pow(1-q, float64(alpha-i)) *
						math.Exp(float64(i*i-i)/(2*z*z))
				}
				want := math.Log(sum)
				got := logAIntegerOrder(q, z, alpha)
				if math.Abs(got-want) > 1e-12+1e-10*want {
					t.Errorf("q=%v z=%v α=%d: log A = %.15g, direct %.15g", q, z, alpha, got, want)
				}
			}
		}
	}
}

// q = 1 is the plain Gaussian mechanism: RDP α/(2z²) exactly.
func TestRDPWithoutSamplingIsGaussian(t *testing.T) {
	a := NewAccountant([]float64{1.5, 2, 3.14159, 64})
	if err := a.Compose(2.71828, 1, 3); err != nil {
		t.Fatal(err)
	}
	for i, order := range a.Orders() {
		want := 3 * order / (2 * 2.71828 * 2.71828)
		if math.Abs(a.RDP()[i]-want) > 1e-15*want {
			t.Errorf("order %v: RDP %v, want %v", order, a.RDP()[i], want)
		}
	}
}

func TestAccountantEdges(t *testing.T) {
	fresh := NewAccountant(nil)
	if eps, order := fresh.Epsilon(1e-5); eps != 0 || order != 0 {
		t.Errorf("no release: ε=%v order=%v, want 0, 0", eps, order)
	}
	if len(fresh.Orders()) != len(DefaultOrders) || fresh.Orders()[0] != 1.25 || fresh.Orders()[len(DefaultOrders)-1] != 512 {
		t.Errorf("default orders %v", fresh.Orders())
	}
	if len(DefaultOrders) != 10+59+3 {
		t.Errorf("DefaultOrders has %d entries, want 72", len(DefaultOrders))
	}
	// Tiny noise, tiny sampling, orders next to 1: finite, non-negative,
	// never NaN.
	for _, c := range []struct{ z, q float64 }{{1e-3, 0.5}, {0.05, 1e-9}, {1e3, 1e-9}, {1, 1e-12}, {0.3, 0.999999}} {
		a := NewAccountant([]float64{1 + 1e-9, 1.0001, 1.01, 1.5, 2, 100.5, 512})
		if err := a.Compose(c.z, c.q, 1000); err != nil {
			t.Fatal(err)
		}
		for i, r := range a.RDP() {
			if math.IsNaN(r) || r < 0 {
				t.Errorf("z=%v q=%v order %v: RDP %v", c.z, c.q, a.Orders()[i], r)
			}
		}
		eps, _ := a.Epsilon(1e-5)
		if math.IsNaN(eps) || !(eps > 0) {
			t.Errorf("z=%v q=%v: ε = %v, want > 0", c.z, c.q, eps)
		}
	}
	for _, d := range []float64{0, 1, -1, math.NaN(), 2} {
		a := NewAccountant(nil)
		_ = a.Compose(1, 1, 1)
		if eps, _ := a.Epsilon(d); !math.IsInf(eps, 1) {
			t.Errorf("δ=%v: ε=%v, want +Inf", d, eps)
		}
	}
}

func TestAccountantRejectsBadInputUnchanged(t *testing.T) {
	bad := []struct {
		orders []float64
		z, q   float64
		steps  int
	}{
		{nil, 0, 0.5, 1}, {nil, -1, 0.5, 1}, {nil, math.NaN(), 0.5, 1}, {nil, math.Inf(1), 0.5, 1},
		{nil, 1, 0, 1}, {nil, 1, 1.5, 1}, {nil, 1, math.NaN(), 1}, {nil, 1, -0.1, 1},
		{nil, 1, 0.5, 0}, {nil, 1, 0.5, -5},
		{[]float64{2, 1}, 1, 0.5, 1}, {[]float64{0.5}, 1, 0.5, 1}, {[]float64{math.NaN()}, 1, 0.5, 1},
		{[]float64{math.Inf(1)}, 1, 0.5, 1}, {[]float64{2 * MaxOrder}, 1, 0.5, 1},
	}
	for _, c := range bad {
		a := NewAccountant(c.orders)
		err := a.Compose(c.z, c.q, c.steps)
		if !errors.Is(err, ErrBadParameter) {
			t.Errorf("%+v: err %v, want ErrBadParameter", c, err)
		}
		if a.Steps() != 0 {
			t.Errorf("%+v: state changed on error", c)
		}
		for _, r := range a.RDP() {
			if r != 0 {
				t.Errorf("%+v: RDP changed on error", c)
			}
		}
	}
}

// Properties: composition adds up, ε is monotone in steps, noise and
// sampling rate, and reading ε changes nothing.
func TestAccountantProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		z := rapid.Float64Range(0.3, 20).Draw(t, "z")
		q := rapid.Float64Range(1e-6, 1).Draw(t, "q")
		steps := rapid.IntRange(1, 5000).Draw(t, "steps")
		// Below δ ≈ 7e-4 the conversion term keeps the bound above
		// MinEpsilon at every default order however small the RDP
		// (TestEpsilonFloorWhenZeroDelta covers larger δ).
		delta := rapid.Float64Range(1e-12, 1e-4).Draw(t, "delta")

		once := NewAccountant(nil)
		if err := once.Compose(z, q, steps); err != nil {
			t.Fatal(err)
		}
		split := NewAccountant(nil)
		k := rapid.IntRange(0, steps-1).Draw(t, "k")
		if k > 0 {
			_ = split.Compose(z, q, k)
		}
		_ = split.Compose(z, q, steps-k)
		for i, r := range once.RDP() {
			if math.Abs(r-split.RDP()[i]) > 1e-9*math.Max(r, 1e-300) {
				t.Fatalf("order %v: %d steps at once RDP %v, in two parts %v", once.Orders()[i], steps, r, split.RDP()[i])
			}
		}

		eps1, order1 := once.Epsilon(delta)
		eps2, order2 := once.Epsilon(delta)
		if eps1 != eps2 || order1 != order2 || once.Steps() != int64(steps) {
			t.Fatalf("reading ε changed the state: %v/%v then %v/%v", eps1, order1, eps2, order2)
		}
		if !(eps1 > 0) || math.IsInf(eps1, 0) {
			t.Fatalf("ε = %v after %d noisy steps", eps1, steps)
		}

		more := once.Clone()
		_ = more.Compose(z, q, 1)
		if e, _ := more.Epsilon(delta); e < eps1 {
			t.Fatalf("one more step lowered ε: %v → %v", eps1, e)
		}
		noisier := NewAccountant(nil)
		_ = noisier.Compose(z*1.5, q, steps)
		if e, _ := noisier.Epsilon(delta); e > eps1 {
			t.Fatalf("more noise raised ε: %v → %v", eps1, e)
		}
		if q < 0.5 {
			denser := NewAccountant(nil)
			_ = denser.Compose(z, q*2, steps)
			if e, _ := denser.Epsilon(delta); e < eps1 {
				t.Fatalf("a higher sampling rate lowered ε: %v → %v", eps1, e)
			}
		}
	})
}

// With a large δ a very noisy, rarely sampled step is (0, δ)-DP outright:
// the total variation between N(0,z²) and (1-q)N(0,z²)+qN(1,z²) is
// q·(2Φ(1/(2z))-1) = 3.9e-4 < δ = 1e-3 at z=8, q=1/128, and the RDP bound
// is negative. The accountant still reports a strictly positive ε, the
// floor MinEpsilon (any ε ≥ 0 is a valid guarantee there); with δ = 1e-5
// the same step has a bound well above the floor.
func TestEpsilonFloorWhenZeroDelta(t *testing.T) {
	a := NewAccountant(nil)
	if err := a.Compose(8, 1.0/128, 1); err != nil {
		t.Fatal(err)
	}
	tv := (1.0 / 128) * (2*0.5*math.Erfc(-1/(2*8)/math.Sqrt2) - 1)
	if tv >= 1e-3 {
		t.Fatalf("test premise: total variation %v", tv)
	}
	if eps, order := a.Epsilon(1e-3); eps != MinEpsilon || order == 0 {
		t.Errorf("δ=1e-3: ε = %v at order %v, want the floor %v at a real order", eps, order, MinEpsilon)
	}
	if eps, _ := a.Epsilon(1e-5); !(eps > 1e-3) {
		t.Errorf("δ=1e-5: ε = %v, want a real bound", eps)
	}
}

// ε is strictly positive after any noisy step, whatever δ in (0, 1) and
// however much noise or little sampling (down to RDP values that underflow
// to exactly 0), and never below the exact ε of one unsampled Gaussian
// release at the same noise where that is larger (the RDP bound is an
// upper bound of it).
func TestEpsilonStrictlyPositiveAfterAnyStep(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		z := math.Pow(10, rapid.Float64Range(-2, 300).Draw(t, "log10z"))
		q := math.Pow(10, rapid.Float64Range(-300, 0).Draw(t, "log10q"))
		if rapid.Bool().Draw(t, "q=1") {
			q = 1
		}
		delta := rapid.Float64Range(1e-12, 0.999999).Draw(t, "delta")
		steps := rapid.IntRange(1, 1000).Draw(t, "steps")
		a := NewAccountant(nil)
		if err := a.Compose(z, q, steps); err != nil {
			t.Fatal(err)
		}
		eps, order := a.Epsilon(delta)
		if !(eps > 0) || math.IsNaN(eps) || order == 0 {
			t.Fatalf("z=%g q=%g δ=%g steps=%d: ε = %v at order %v", z, q, delta, steps, eps, order)
		}
		if q == 1 && steps == 1 {
			exact, err := GaussianEpsilon(z, delta, 1)
			if err == nil && eps < exact*(1-1e-9) {
				t.Fatalf("z=%g δ=%g: ε = %v below the exact %v", z, delta, eps, exact)
			}
		}
	})
	for _, c := range []struct{ z, q, delta float64 }{
		{1e300, 1, 0.5}, {1e300, 1e-300, 1e-12}, {1e6, 1, 1e-2}, {1, 1e-300, 0.9}, {8, 1.0 / 128, 1e-3},
	} {
		a := NewAccountant(nil)
		if err := a.Compose(c.z, c.q, 1); err != nil {
			t.Fatal(err)
		}
		if eps, _ := a.Epsilon(c.delta); !(eps > 0) {
			t.Errorf("z=%g q=%g δ=%g: ε = %v after a noisy step", c.z, c.q, c.delta, eps)
		}
	}
}

// RDP is non-decreasing in the order: the integer-order and the
// fractional-order series, interleaved, must agree with that.
func TestRDPMonotoneInOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		z := rapid.Float64Range(0.5, 10).Draw(t, "z")
		q := rapid.Float64Range(1e-4, 0.99).Draw(t, "q")
		orders := []float64{1.01, 1.5, 2, 2.000001, 2.5, 3, 3.5, 4, 7.25, 8, 8.5, 9, 31.5, 32, 32.5}
		prev := 0.0
		for _, a := range orders {
			r := rdpSubsampledGaussian(q, z, a)
			if math.IsNaN(r) || r < prev*(1-1e-9)-1e-15 {
				t.Fatalf("q=%v z=%v: RDP at order %v is %v, below %v at the previous order", q, z, a, r, prev)
			}
			prev = r
		}
	})
}

// Without sampling, T releases at noise multiplier z are exactly one
// Gaussian release at z/√T, whose exact ε the analytic Gaussian
// characterisation gives. The RDP bound is an upper bound of it: never
// below (it would then under-report), and not far above.
func TestEpsilonNeverBelowExactGaussian(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		z := math.Pow(10, rapid.Float64Range(-1, 3).Draw(t, "log10z"))
		steps := rapid.IntRange(1, 100000).Draw(t, "steps")
		delta := math.Pow(10, rapid.Float64Range(-12, -1).Draw(t, "log10delta"))
		a := NewAccountant(nil)
		if err := a.Compose(z, 1, steps); err != nil {
			t.Fatal(err)
		}
		eps, _ := a.Epsilon(delta)
		exact, err := GaussianEpsilon(z/math.Sqrt(float64(steps)), delta, 1)
		if err != nil {
			t.Fatal(err)
		}
		if eps < exact*(1-1e-9) {
			t.Fatalf("z=%g T=%d δ=%g: RDP ε %v below the exact %v", z, steps, delta, eps, exact)
		}
		if exact > 0.1 && eps > 2*exact+1 {
			t.Fatalf("z=%g T=%d δ=%g: RDP ε %v far above the exact %v", z, steps, delta, eps, exact)
		}
	})
}
