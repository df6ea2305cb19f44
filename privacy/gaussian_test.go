package privacy

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"
)

// Published: Balle and Wang's calibration gives σ ≈ 3.7306 at (1, 1e-5).
// TensorFlow Privacy and dp_accounting use σ = 4.530877117 as the noise at
// which the RDP conversion gives exactly (1, 1e-6)
// (TestEpsilonPublishedGaussianFineOrders); the exact analysis needs less,
// so the exact ε of that σ is below 1.
func TestAnalyticSigmaPublished(t *testing.T) {
	if eps, err := GaussianEpsilon(4.530877117, 1e-6, 1); err != nil || !(eps < 1 && eps > 0.85) {
		t.Errorf("exact ε of σ=4.530877117 at δ=1e-6: %v, %v (want just below the RDP value 1)", eps, err)
	}
	for _, c := range []struct{ eps, delta, want, tol float64 }{
		{1, 1e-5, 3.7306, 1e-4},
	} {
		got, err := AnalyticGaussianSigma(c.eps, c.delta, 1)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-c.want) > c.tol {
			t.Errorf("ε=%v δ=%v: σ = %.10g, want %.10g", c.eps, c.delta, got, c.want)
		}
	}
}

// analyticSigmaAlgorithm1 is Balle and Wang's Algorithm 1 as printed, in
// linear space with math.Erfc: a slow, independent reference for moderate
// ε and δ, where nothing underflows.
func analyticSigmaAlgorithm1(eps, delta, sens float64) float64 {
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	delta0 := phi(0) - math.Exp(eps)*phi(-math.Sqrt(2*eps))
	var alpha float64
	if delta >= delta0 {
		bPlus := func(v float64) float64 { return phi(math.Sqrt(eps*v)) - math.Exp(eps)*phi(-math.Sqrt(eps*(v+2))) }
		lo, hi := 0.0, 1.0
		for bPlus(hi) <= delta {
			lo, hi = hi, 2*hi
		}
		for i := 0; i < 200; i++ {
			mid := (lo + hi) / 2
			if bPlus(mid) <= delta {
				lo = mid
			} else {
				hi = mid
			}
		}
		alpha = math.Sqrt(1+lo/2) - math.Sqrt(lo/2)
	} else {
		bMinus := func(u float64) float64 { return phi(-math.Sqrt(eps*u)) - math.Exp(eps)*phi(-math.Sqrt(eps*(u+2))) }
		lo, hi := 0.0, 1.0
		for bMinus(hi) > delta {
			lo, hi = hi, 2*hi
		}
		for i := 0; i < 200; i++ {
			mid := (lo + hi) / 2
			if bMinus(mid) <= delta {
				hi = mid
			} else {
				lo = mid
			}
		}
		alpha = math.Sqrt(1+hi/2) + math.Sqrt(hi/2)
	}
	return alpha * sens / math.Sqrt(2*eps)
}

func TestAnalyticSigmaAgainstAlgorithm1(t *testing.T) {
	for _, eps := range []float64{0.01, 0.1, 0.5, 1, 2, 5, 10} {
		for _, delta := range []float64{0.3, 0.01, 1e-3, 1e-5, 1e-8} {
			for _, sens := range []float64{1, 0.25, 3} {
				got, err := AnalyticGaussianSigma(eps, delta, sens)
				if err != nil {
					t.Fatal(err)
				}
				want := analyticSigmaAlgorithm1(eps, delta, sens)
				if relErr(got, want) > 1e-8 {
					t.Errorf("ε=%v δ=%v Δ=%v: σ = %.12g, Algorithm 1 %.12g", eps, delta, sens, got, want)
				}
			}
		}
	}
}

// The σ returned satisfies the exact condition and is tight: 0.1% less
// noise breaks it. Also at extremes where linear-space code underflows.
func TestAnalyticSigmaExactAndTight(t *testing.T) {
	for _, eps := range []float64{1e-4, 0.01, 1, 50, 1000} {
		for _, delta := range []float64{0.5, 1e-5, 1e-20, 1e-100, 1e-300} {
			sigma, err := AnalyticGaussianSigma(eps, delta, 2)
			if err != nil {
				t.Fatal(err)
			}
			if math.IsNaN(sigma) || math.IsInf(sigma, 0) || sigma <= 0 {
				t.Fatalf("ε=%v δ=%v: σ = %v", eps, delta, sigma)
			}
			s := sigma / 2
			if gaussianLogDelta(eps, s) > math.Log(delta) {
				t.Errorf("ε=%v δ=%v: σ=%v does not give (ε, δ)-DP", eps, delta, sigma)
			}
			if gaussianLogDelta(eps, s*0.999) <= math.Log(delta) {
				t.Errorf("ε=%v δ=%v: σ=%v is not tight", eps, delta, sigma)
			}
			back, err := GaussianEpsilon(sigma, delta, 2)
			if err != nil || relErr(back, eps) > 1e-9 {
				t.Errorf("ε=%v δ=%v: GaussianEpsilon(σ) = %v, %v", eps, delta, back, err)
			}
		}
	}
}

func TestClassicSigma(t *testing.T) {
	got, err := ClassicGaussianSigma(0.5, 1e-5, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * math.Sqrt(2*math.Log(1.25/1e-5)) / 0.5
	if got != want {
		t.Errorf("σ = %v, want %v", got, want)
	}
	analytic, _ := AnalyticGaussianSigma(0.5, 1e-5, 2)
	if !(analytic < got) {
		t.Errorf("analytic σ %v should be below the classic %v", analytic, got)
	}
	for _, eps := range []float64{1, 1.5, 10} {
		if _, err := ClassicGaussianSigma(eps, 1e-5, 1); !errors.Is(err, ErrClassicInvalid) {
			t.Errorf("ε=%v: err %v, want ErrClassicInvalid", eps, err)
		}
	}
}

func TestGaussianBadParameters(t *testing.T) {
	for _, c := range []struct{ eps, delta, sens float64 }{
		{0, 1e-5, 1}, {-1, 1e-5, 1}, {math.NaN(), 1e-5, 1}, {math.Inf(1), 1e-5, 1},
		{1, 0, 1}, {1, 1, 1}, {1, math.NaN(), 1}, {1, -0.5, 1},
		{1, 1e-5, 0}, {1, 1e-5, -2}, {1, 1e-5, math.NaN()}, {1, 1e-5, math.Inf(1)},
	} {
		if _, err := AnalyticGaussianSigma(c.eps, c.delta, c.sens); !errors.Is(err, ErrBadParameter) {
			t.Errorf("analytic %+v: err %v", c, err)
		}
		if _, err := ClassicGaussianSigma(c.eps/2, c.delta, c.sens); !errors.Is(err, ErrBadParameter) && !math.IsNaN(c.eps) {
			t.Errorf("classic %+v: err %v", c, err)
		}
	}
	if _, err := GaussianEpsilon(0, 1e-5, 1); !errors.Is(err, ErrBadParameter) {
		t.Errorf("GaussianEpsilon(σ=0): %v", err)
	}
}

func TestLogErfcAgainstMathErfc(t *testing.T) {
	for x := -5.0; x < 26; x += 0.37 {
		want := math.Log(math.Erfc(x))
		if got := logErfc(x); math.Abs(got-want) > 1e-13*math.Max(1, math.Abs(want)) {
			t.Errorf("x=%v: %v, want %v", x, got, want)
		}
	}
	// Across the switch to the asymptotic series, and far past math.Erfc's
	// underflow, log erfc(x) ≈ -x² - log(x√π) to within 1/(2x²).
	for _, x := range []float64{24.999, 25, 25.001, 30, 100, 1e4} {
		approx := -x*x - math.Log(x*math.Sqrt(math.Pi))
		if d := logErfc(x) - approx; d > 1e-15*math.Abs(approx) || d < -1/(2*x*x)*1.01 {
			t.Errorf("x=%v: logErfc %v, leading term %v", x, logErfc(x), approx)
		}
	}
	if d := logErfc(asymptoticErfcFrom) - math.Log(math.Erfc(asymptoticErfcFrom)); math.Abs(d) > 1e-13*625 {
		t.Errorf("discontinuity at the switch: %v", d)
	}
}

func TestAddGaussianNoiseDistribution(t *testing.T) {
	u := testUpdate(map[string][]float32{"coarse": make([]float32, 60000), "fine": make([]float32, 40000)})
	const sigma = 0.7
	AddGaussianNoise(u, sigma, rand.New(rand.NewPCG(1, 2)))
	var n, sum, sumSq, tail float64
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			for _, v := range u.Get(g, k).Data {
				x := float64(v)
				n++
				sum += x
				sumSq += x * x
				if math.Abs(x) > 2*sigma {
					tail++
				}
			}
		}
	}
	mean, variance := sum/n, sumSq/n-(sum/n)*(sum/n)
	// 5 standard errors: mean σ/√n, variance σ²·√(2/n), tail fraction
	// √(p(1-p)/n) with p = P(|N(0,1)| > 2) = 0.0455.
	if math.Abs(mean) > 5*sigma/math.Sqrt(n) {
		t.Errorf("mean %v", mean)
	}
	if math.Abs(variance-sigma*sigma) > 5*sigma*sigma*math.Sqrt(2/n) {
		t.Errorf("variance %v, want %v", variance, sigma*sigma)
	}
	if p := 0.0455; math.Abs(tail/n-p) > 5*math.Sqrt(p*(1-p)/n) {
		t.Errorf("P(|x| > 2σ) = %v, want %v", tail/n, p)
	}

	a := testUpdate(map[string][]float32{"coarse": {1, 2, 3}, "fine": {4}})
	b := a.Clone()
	AddGaussianNoise(a, 1, rand.New(rand.NewPCG(7, 7)))
	AddGaussianNoise(b, 1, rand.New(rand.NewPCG(7, 7)))
	for _, g := range a.GroupNames() {
		for _, k := range a.Keys(g) {
			for i, v := range a.Get(g, k).Data {
				if v != b.Get(g, k).Data[i] {
					t.Fatalf("same seed, different noise at %s/%s[%d]", g, k, i)
				}
			}
		}
	}
	c := testUpdate(map[string][]float32{"coarse": {1, 2, 3}})
	for _, s := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		AddGaussianNoise(c, s, rand.New(rand.NewPCG(1, 1)))
	}
	if d := c.Get("coarse", "layers.0.q_proj.lora_A.weight").Data; d[0] != 1 || d[1] != 2 || d[2] != 3 {
		t.Errorf("σ outside (0, ∞) changed the update: %v", d)
	}
}

// As ε → 0 the analytic mechanism needs only enough noise for (0, δ)-DP:
// Φ(a) - e^ε·Φ(b) ≈ 1/(s√(2π)) - ε/2 ≤ δ, i.e. s → 1/((δ + ε/2)√(2π)),
// while the classic σ grows as 1/ε.
func TestAnalyticSigmaAtTinyEpsilon(t *testing.T) {
	for _, c := range [][2]float64{{1e-30, 1e-5}, {1e-45, 1e-40}, {1e-12, 1e-9}} {
		got, err := AnalyticGaussianSigma(c[0], c[1], 1)
		if err != nil {
			t.Fatal(err)
		}
		want := 1 / ((c[1] + c[0]/2) * math.Sqrt(2*math.Pi))
		if relErr(got, want) > 1e-6 {
			t.Errorf("ε=%v δ=%v: σ = %v, want %v", c[0], c[1], got, want)
		}
	}
}

// Less privacy needs less noise: σ falls as ε or δ grows, over the whole
// range, tiny values included.
func TestAnalyticSigmaMonotone(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		logEps := rapid.Float64Range(-40, 3).Draw(t, "log10 ε")
		logDelta := rapid.Float64Range(-200, -0.5).Draw(t, "log10 δ")
		step := rapid.Float64Range(0.01, 2).Draw(t, "step")
		eps, delta := math.Pow(10, logEps), math.Pow(10, logDelta)
		s, err := AnalyticGaussianSigma(eps, delta, 1)
		if err != nil {
			t.Fatal(err)
		}
		sEps, _ := AnalyticGaussianSigma(eps*math.Pow(10, step), delta, 1)
		sDelta, _ := AnalyticGaussianSigma(eps, math.Min(delta*math.Pow(10, step), 0.9), 1)
		if sEps > s*(1+1e-12) || sDelta > s*(1+1e-12) {
			t.Fatalf("ε=%v δ=%v: σ=%v, with larger ε %v, with larger δ %v", eps, delta, s, sEps, sDelta)
		}
		if gaussianLogDelta(eps, s) > math.Log(delta) {
			t.Fatalf("ε=%v δ=%v: σ=%v does not meet δ", eps, delta, s)
		}
	})
}

// A σ beyond float64 is an error naming the sensitivity, never +Inf noise.
func TestAnalyticSigmaOverflowIsAnError(t *testing.T) {
	for _, sens := range []float64{1e308, math.MaxFloat64} {
		s, err := AnalyticGaussianSigma(1, 1e-5, sens)
		if !errors.Is(err, ErrBadParameter) || s != 0 {
			t.Errorf("sensitivity %g: σ = %v, err %v; want ErrBadParameter", sens, s, err)
		}
	}
}

// hockeyStickDelta is the slow, obvious definition of the δ(ε) of the
// Gaussian mechanism with noise σ and sensitivity 1: the hockey-stick
// divergence ∫ max(0, p(x) - e^ε·p'(x)) dx between N(0, σ²) and N(1, σ²),
// by Simpson's rule on a grid fine against σ. No normal CDF and no closed
// form are involved.
func hockeyStickDelta(eps, sigma float64) float64 {
	lo, hi := -40*sigma, 1+40*sigma
	n := 400000
	h := (hi - lo) / float64(n)
	f := func(x float64) float64 {
		p := math.Exp(-x*x/(2*sigma*sigma)) / (sigma * math.Sqrt(2*math.Pi))
		p1 := math.Exp(-(x-1)*(x-1)/(2*sigma*sigma)) / (sigma * math.Sqrt(2*math.Pi))
		return math.Max(0, p-math.Exp(eps)*p1)
	}
	sum := f(lo) + f(hi)
	for i := 1; i < n; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		sum += w * f(lo+float64(i)*h)
	}
	return sum * h / 3
}

// The analytic σ against the definition of (ε, δ)-DP: at the σ returned
// the hockey-stick divergence is δ (the σ is the smallest that is DP).
func TestAnalyticSigmaAgainstHockeyStickIntegral(t *testing.T) {
	for _, eps := range []float64{0.05, 0.3, 1, 3, 8} {
		for _, delta := range []float64{0.2, 1e-2, 1e-4, 1e-6, 1e-9} {
			sigma, err := AnalyticGaussianSigma(eps, delta, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := hockeyStickDelta(eps, sigma); relErr(got, delta) > 1e-6 {
				t.Errorf("ε=%v δ=%v: σ=%.10g has δ(ε) = %.10g by integration", eps, delta, sigma, got)
			}
		}
	}
}
