package privacy

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dafnet/daf/adapter"
	"pgregory.net/rapid"
)

func TestPrepareReleaseTenantClipsWithoutNoise(t *testing.T) {
	u := testUpdate(map[string][]float32{"coarse": {3, 0}, "fine": {0, 4}})
	u.Meta.Samples = 40
	u.Meta.Quality = map[string]adapter.GroupQuality{"fine": {PPLBefore: 3}}
	rep, err := PrepareRelease(u, Tenant, 1, 1e-5, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Noised || rep.Sigma != 0 || rep.NoiseMultiplier != 0 || math.Abs(rep.ClipFactor-0.4) > 1e-6 {
		t.Errorf("report %+v", rep)
	}
	if n := u.L2(); n > 2 || n < 2-4e-6 {
		t.Errorf("norm %v, want 2", n)
	}
	if u.Meta.Tier != "tenant" || u.Meta.Samples != 40 || u.Meta.Quality["fine"].PPLBefore != 3 {
		t.Errorf("daf.tier = %q", u.Meta.Tier)
	}
}

func TestPrepareReleasePublicNoises(t *testing.T) {
	const n = 30000
	u := testUpdate(map[string][]float32{"coarse": make([]float32, n)})
	u.Get("coarse", key).Data[0] = 10
	u.Meta.Samples = 5000
	u.Meta.Quality = map[string]adapter.GroupQuality{"coarse": {PPLBefore: 12, PPLAfter: 10}}
	rep, err := PrepareRelease(u, Public, 1, 1e-5, 0.5, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	if u.Meta.Quality != nil || u.Meta.Samples != 1 || u.Meta.Tier != "public" {
		t.Errorf("public release keeps data-dependent metadata: samples %v quality %v", u.Meta.Samples, u.Meta.Quality)
	}
	wantSigma, _ := AnalyticGaussianSigma(1, 1e-5, 0.5)
	if !rep.Noised || rep.Sigma != wantSigma || math.Abs(rep.NoiseMultiplier-wantSigma/0.5) > 1e-15 || math.Abs(rep.ClipFactor-0.05) > 1e-6 {
		t.Errorf("report %+v, want σ %v", rep, wantSigma)
	}
	// Everything but the first value was zero: the rest is pure noise.
	var sumSq float64
	for _, v := range u.Get("coarse", key).Data[1:] {
		sumSq += float64(v) * float64(v)
	}
	if sd := math.Sqrt(sumSq / (n - 1)); math.Abs(sd-wantSigma) > 5*wantSigma/math.Sqrt(2*n) {
		t.Errorf("noise sd %v, want %v", sd, wantSigma)
	}
	again := testUpdate(map[string][]float32{"coarse": make([]float32, n)})
	again.Get("coarse", key).Data[0] = 10
	_, _ = PrepareRelease(again, Public, 1, 1e-5, 0.5, rand.New(rand.NewPCG(3, 4)))
	if again.Get("coarse", key).Data[17] != u.Get("coarse", key).Data[17] {
		t.Error("same seed gave different noise")
	}
}

func TestPrepareReleaseRefusesUnchanged(t *testing.T) {
	nan := testUpdate(map[string][]float32{"coarse": {1, float32(math.NaN())}})
	cases := []struct {
		name string
		u    *adapter.Update
		tier Tier
		eps  float64
		clip float64
		rng  *rand.Rand
		want error
	}{
		{"private", testUpdate(map[string][]float32{"coarse": {30}}), Private, 1, 1, nil, ErrScope},
		{"unknown tier", testUpdate(map[string][]float32{"coarse": {30}}), Tier(9), 1, 1, nil, ErrScope},
		{"nan", nan, Tenant, 1, 1, nil, adapter.ErrNonFinite},
		{"clip 0", testUpdate(map[string][]float32{"coarse": {30}}), Tenant, 1, 0, nil, ErrBadParameter},
		{"clip NaN", testUpdate(map[string][]float32{"coarse": {30}}), Group, 1, math.NaN(), nil, ErrBadParameter},
		{"public ε 0", testUpdate(map[string][]float32{"coarse": {30}}), Public, 0, 1, rand.New(rand.NewPCG(1, 1)), ErrBadParameter},
		{"public σ beyond float32", testUpdate(map[string][]float32{"coarse": {30}}), Public, 1e-45, 1, rand.New(rand.NewPCG(1, 1)), ErrBadParameter},
		{"public no rng", testUpdate(map[string][]float32{"coarse": {30}}), Public, 1, 1, nil, ErrBadParameter},
		{"nil update", nil, Tenant, 1, 1, nil, ErrBadParameter},
	}
	for _, c := range cases {
		delta := 1e-5
		if c.eps == 1e-45 {
			// As ε → 0 the analytic σ tends to 1/(δ√(2π)), finite: only
			// a tiny δ as well pushes it past float32.
			delta = 1e-300
		}
		_, err := PrepareRelease(c.u, c.tier, c.eps, delta, c.clip, c.rng)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if c.u != nil && c.u.Get("coarse", key).Data[0] != 30 && c.name != "nan" {
			t.Errorf("%s: update changed on error", c.name)
		}
	}
}

func TestAggregateSensitivity(t *testing.T) {
	if s, err := AggregateSensitivity("weighted_average", 1, []float64{1, 1, 1, 1}); err != nil || s != 0.5 {
		t.Errorf("uniform mean of 4: %v, %v; want 2C/n = 0.5", s, err)
	}
	if s, err := AggregateSensitivity("weighted_average", 2, []float64{300, 100}); err != nil || s != 3 {
		t.Errorf("weights 3:1: %v, %v; want 2·2·0.75 = 3", s, err)
	}
	for _, s := range []string{"quality_weighted", "learned_attention", "median", "trimmed_mean", "krum", "multi_krum", "geometric_median", "centered_clip", "daf", "nonsense"} {
		if _, err := AggregateSensitivity(s, 1, []float64{1, 1}); !errors.Is(err, ErrNoSensitivity) {
			t.Errorf("%s: err %v, want ErrNoSensitivity", s, err)
		}
	}
	for _, w := range [][]float64{nil, {0, 0}, {1, -1}, {1, math.NaN()}} {
		if _, err := AggregateSensitivity("weighted_average", 1, w); !errors.Is(err, ErrBadParameter) {
			t.Errorf("weights %v: err %v", w, err)
		}
	}
	agg := testUpdate(map[string][]float32{"coarse": {1}})
	if _, err := NoiseAggregate(agg, "median", 1, []float64{1, 1}, 1, 1e-5, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, ErrNoSensitivity) {
		t.Errorf("noise on a median: %v", err)
	}
	rep, err := NoiseAggregate(agg, "weighted_average", 1, []float64{1, 1, 1, 1}, 1, 1e-5, rand.New(rand.NewPCG(1, 1)))
	want, _ := AnalyticGaussianSigma(1, 1e-5, 0.5)
	if err != nil || rep.Sigma != want || !rep.Noised {
		t.Errorf("noise on a mean: %+v, %v; want σ %v", rep, err, want)
	}
}

// The stated sensitivity of a weighted mean bounds what removing any one
// node actually does to it (slow reference: recompute the mean without it).
func TestAggregateSensitivityBoundsRemoval(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 8).Draw(t, "n")
		dim := rapid.IntRange(1, 6).Draw(t, "dim")
		const c = 1.0
		vecs := make([][]float64, n)
		weights := make([]float64, n)
		for i := range vecs {
			vecs[i] = make([]float64, dim)
			var norm float64
			for j := range vecs[i] {
				vecs[i][j] = rapid.Float64Range(-3, 3).Draw(t, "x")
				norm += vecs[i][j] * vecs[i][j]
			}
			if norm = math.Sqrt(norm); norm > c {
				for j := range vecs[i] {
					vecs[i][j] *= c / norm
				}
			}
			weights[i] = rapid.Float64Range(0.01, 100).Draw(t, "w")
		}
		mean := func(skip int) []float64 {
			out := make([]float64, dim)
			var sum float64
			for i, v := range vecs {
				if i == skip {
					continue
				}
				sum += weights[i]
				for j := range v {
					out[j] += weights[i] * v[j]
				}
			}
			for j := range out {
				out[j] /= sum
			}
			return out
		}
		sens, err := AggregateSensitivity("weighted_average", c, weights)
		if err != nil {
			t.Fatal(err)
		}
		all := mean(-1)
		for k := range vecs {
			without := mean(k)
			var d float64
			for j := range all {
				d += (all[j] - without[j]) * (all[j] - without[j])
			}
			if math.Sqrt(d) > sens*(1+1e-12) {
				t.Fatalf("removing node %d moved the mean by %v > sensitivity %v", k, math.Sqrt(d), sens)
			}
		}
	})
}
