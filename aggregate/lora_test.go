package aggregate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/dafnet/daf/adapter"
	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"
)

const (
	modA  = "base_model.model.layers.0.q_proj.lora_A.weight"
	modB  = "base_model.model.layers.0.q_proj.lora_B.weight"
	mod2A = "base_model.model.layers.1.v_proj.lora_A.weight"
	mod2B = "base_model.model.layers.1.v_proj.lora_B.weight"
	head  = "base_model.model.score.weight"
)

// loraUpdate is an adapter with two LoRA modules of rank r (out×in = 12×9
// and 7×15) and one plain tensor, filled from rng.
func loraUpdate(node string, r int, alpha float64, rng *rand.Rand) *adapter.Update {
	u := adapter.New()
	u.Meta.Kind = adapter.KindAdapter
	u.Meta.Node = node
	u.Meta.Samples = float64(1 + rng.IntN(100))
	u.Meta.LoraAlpha = alpha
	fill := func(shape ...int) *adapter.Tensor {
		t := adapter.NewTensor(shape...)
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64())
		}
		return t
	}
	u.Set("domain", modA, fill(r, 9))
	u.Set("domain", modB, fill(12, r))
	u.Set("domain", mod2A, fill(r, 15))
	u.Set("domain", mod2B, fill(7, r))
	u.Set("domain", head, fill(2, 5))
	return u
}

// denseVector is the group's effective parameters: each module's
// (α/r)·B·A (modules sorted) followed by the plain tensors, in float64.
func denseVector(u *adapter.Update, group string) []float64 {
	var out []float64
	ts := u.Groups[group]
	var mods []string
	var plain []string
	for _, k := range u.Keys(group) {
		if m, f, ok := adapter.SplitLoRAKey(k); ok {
			if f == "A" {
				mods = append(mods, m)
			}
			continue
		}
		plain = append(plain, k)
	}
	sort.Strings(mods)
	for _, m := range mods {
		a, b := ts[m+".lora_A.weight"], ts[m+".lora_B.weight"]
		r := a.Shape[0]
		out = append(out, slowProduct(a.Data, b.Data, b.Shape[0], a.Shape[1], r, effectiveAlpha(u, r)/float64(r))...)
	}
	for _, k := range plain {
		for _, v := range ts[k].Data {
			out = append(out, float64(v))
		}
	}
	return out
}

func relErr(got, want []float64) float64 {
	var d, w float64
	for i := range got {
		d += (got[i] - want[i]) * (got[i] - want[i])
		w += want[i] * want[i]
	}
	return math.Sqrt(d / max(w, 1e-300))
}

// The product of averaged factors is not the average of the products.
func TestFactorModeIsNotTheMeanOfProducts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	us := []*adapter.Update{loraUpdate("a", 4, 8, rng), loraUpdate("b", 4, 8, rng), loraUpdate("c", 4, 8, rng)}
	for _, u := range us {
		u.Meta.Samples = 1
	}
	want := slowMean([][]float64{denseVector(us[0], "domain"), denseVector(us[1], "domain"), denseVector(us[2], "domain")})
	factor, err := Aggregate("weighted_average", us, Options{})
	if err != nil {
		t.Fatal(err)
	}
	exact, err := Aggregate("weighted_average", us, Options{LoRAMode: Exact})
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(denseVector(factor, "domain"), want); e < 0.3 {
		t.Errorf("factor mode error %.3g: expected the product of means to be far from the mean of products", e)
	}
	if e := relErr(denseVector(exact, "domain"), want); e > 1e-5 {
		t.Errorf("exact mode error %.3g > 1e-5", e)
	}
	if exact.Meta.Rank != 12 || exact.Meta.LoraAlpha != 12 {
		t.Errorf("exact output rank %d alpha %v, want 12 and 12", exact.Meta.Rank, exact.Meta.LoraAlpha)
	}
	// With a shared A (the seed's assumption) factor mode is exact.
	for _, u := range us[1:] {
		u.Set("domain", modA, us[0].Get("domain", modA).Clone())
		u.Set("domain", mod2A, us[0].Get("domain", mod2A).Clone())
	}
	want = slowMean([][]float64{denseVector(us[0], "domain"), denseVector(us[1], "domain"), denseVector(us[2], "domain")})
	if factor, err = Aggregate("weighted_average", us, Options{}); err != nil {
		t.Fatal(err)
	}
	if e := relErr(denseVector(factor, "domain"), want); e > 1e-5 {
		t.Errorf("factor mode with shared A: error %.3g", e)
	}
}

// Every strategy in exact mode against its slow version on dense products,
// with ranks and alphas that differ between nodes.
func TestExactModeMatchesSlowOnProducts(t *testing.T) {
	forEachKernelPath(t, func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			n := rapid.IntRange(2, 7).Draw(t, "n")
			rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 3))
			var us []*adapter.Update
			for i := 0; i < n; i++ {
				r := rapid.IntRange(1, 5).Draw(t, "rank")
				alpha := rapid.SampledFrom([]float64{0, 1, 8, 16}).Draw(t, "alpha")
				us = append(us, loraUpdate(fmt.Sprint("node", i), r, alpha, rng))
			}
			xs := make([][]float64, n)
			samples := make([]float64, n)
			for i, u := range us {
				xs[i] = denseVector(u, "domain")
				samples[i] = u.Meta.Samples
			}
			f := 0
			if n > 4 {
				f = 1
			}
			beta := 0.2
			want := map[string][]float64{
				"weighted_average":  slowWeighted(xs, slowNormalise(samples)),
				"quality_weighted":  slowMean(xs), // no quality reported: all scores 0
				"learned_attention": slowAttention(xs, nil, 1),
				"trimmed_mean":      slowTrimmedMean(xs, beta),
				"median":            slowMedian(xs),
				"geometric_median":  slowGeometricMedian(xs, samples, 1e-6, 100),
				"centered_clip":     slowCenteredClip(xs, 0, 100),
			}
			if n > 2*f+2 {
				want["krum"] = slowKrum(xs, f, 1)
				want["multi_krum"] = slowKrum(xs, f, n-f)
			}
			for s, w := range want {
				got, err := Aggregate(s, us, Options{LoRAMode: Exact, TrimFraction: beta, KrumF: f})
				if err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				tol := 1e-5
				if s == "geometric_median" || s == "centered_clip" || s == "learned_attention" {
					tol = 1e-4 // iterative / exponential: float32 factors vs float64 vectors
				}
				if e := relErr(denseVector(got, "domain"), w); e > tol {
					t.Fatalf("%s exact: relative error %.3g > %g", s, e, tol)
				}
			}
		})
	})
}

// SVD mode: the reported truncation error is the true ‖ΔW − ΔW_k‖/‖ΔW‖ of
// the best rank-k approximation (Eckart–Young), and the factors realise it.
func TestSVDModeTruncation(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	us := []*adapter.Update{loraUpdate("a", 3, 6, rng), loraUpdate("b", 2, 0, rng), loraUpdate("c", 4, 4, rng)}
	for _, strategy := range []string{"weighted_average", "median"} {
		exact, err := Aggregate(strategy, us, Options{LoRAMode: Exact})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []int{1, 3, 9} {
			got, rep, err := aggregateGroups(us, func(string) string { return strategy }, strategy, Options{LoRAMode: SVD, Rank: k})
			if err != nil {
				t.Fatal(err)
			}
			if got.Meta.Rank != k || got.Get("domain", modA).Shape[0] != k {
				t.Fatalf("%s svd rank %d: output rank %d", strategy, k, got.Meta.Rank)
			}
			// Best rank-k error of each module, from a dense SVD.
			var lost, total float64
			for _, m := range [][2]string{{modA, modB}, {mod2A, mod2B}} {
				a, b := exact.Get("domain", m[0]), exact.Get("domain", m[1])
				r := a.Shape[0]
				dense := slowProduct(a.Data, b.Data, b.Shape[0], a.Shape[1], r, exact.Meta.LoraAlpha/float64(r))
				var svd mat.SVD
				svd.Factorize(mat.NewDense(b.Shape[0], a.Shape[1], dense), mat.SVDNone)
				for j, s := range svd.Values(nil) {
					total += s * s
					if j >= k {
						lost += s * s
					}
				}
			}
			wantErr := math.Sqrt(lost / total)
			if math.Abs(rep.SVDRelError-wantErr) > 1e-4*max(wantErr, 1e-3) {
				t.Errorf("%s svd rank %d: reported error %.6g, best possible %.6g", strategy, k, rep.SVDRelError, wantErr)
			}
			if e := relErr(denseVector(got, "domain")[:12*9+7*15], denseVector(exact, "domain")[:12*9+7*15]); math.Abs(e-wantErr) > 1e-4*max(wantErr, 1e-2) {
				t.Errorf("%s svd rank %d: factors have error %.6g, reported %.6g", strategy, k, e, wantErr)
			}
		}
	}
}

// Aggregating an adapter with copies of itself returns the same ΔW in
// every strategy and mode.
func TestSelfAggregationIsIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	u := loraUpdate("x", 4, 16, rng)
	want := denseVector(u, "domain")
	for _, s := range Strategies() {
		for _, mode := range []LoRAMode{Factor, Exact, SVD} {
			us := []*adapter.Update{u, u.Clone(), u.Clone()}
			got, err := Aggregate(s, us, Options{LoRAMode: mode, TrimFraction: 0.2})
			if err != nil {
				t.Fatalf("%s %s: %v", s, mode, err)
			}
			if e := relErr(denseVector(got, "domain"), want); e > 1e-5 {
				t.Errorf("%s %s: relative error %.3g", s, mode, e)
			}
		}
	}
}

func TestProductModeErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	a, b := loraUpdate("a", 2, 0, rng), loraUpdate("b", 2, 0, rng)
	delete(b.Groups["domain"], mod2B)
	delete(a.Groups["domain"], mod2B)
	_, err := Aggregate("weighted_average", []*adapter.Update{a, b}, Options{LoRAMode: Exact})
	if err == nil || !contains(err, ErrNeedFactors, "v_proj", "lora_B") {
		t.Fatalf("missing half: %v", err)
	}
	a, b = loraUpdate("a", 2, 0, rng), loraUpdate("b", 2, 0, rng)
	b.Set("domain", modB, adapter.NewTensor(13, 2))
	_, err = Aggregate("weighted_average", []*adapter.Update{a, b}, Options{LoRAMode: Exact})
	if err == nil || !contains(err, ErrMismatch, `"b"`, "q_proj", "[13 9]", "[12 9]") {
		t.Fatalf("shape: %v", err)
	}
	b = loraUpdate("b", 3, 0, rng) // another rank: fine in product modes, refused in factor mode
	if _, err = Aggregate("weighted_average", []*adapter.Update{a, b}, Options{LoRAMode: Exact}); err != nil {
		t.Fatal(err)
	}
	_, err = Aggregate("weighted_average", []*adapter.Update{a, b}, Options{})
	if err == nil || !contains(err, ErrMismatch, `"b"`, "[3 9]", "[2 9]") {
		t.Fatalf("factor ranks: %v", err)
	}
}

func contains(err error, sentinel error, parts ...string) bool {
	if !errorsIs(err, sentinel) {
		return false
	}
	for _, p := range parts {
		if !stringsContains(err.Error(), p) {
			return false
		}
	}
	return true
}

// svd mode with one update still re-factorises it to the rank asked for:
// n = 1 is that update, then truncated, with the truncation reported.
func TestSVDModeSingleUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	u := loraUpdate("solo", 4, 8, rng)
	want := denseVector(u, "domain")
	for _, s := range Strategies() {
		got, rep, err := AggregateReport(s, []*adapter.Update{u}, Options{LoRAMode: SVD, Rank: 2})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		e := relErr(denseVector(got, "domain"), want)
		// denseVector also holds the plain tensors, which svd leaves exact,
		// so the measured error is a little below the reported one.
		if got.Meta.Rank != 2 || !(e > 0.01) || !(rep.SVDRelError >= e) || rep.SVDRelError > 1.5*e {
			t.Fatalf("%s: rank %d, error %.3g, reported %.3g; want rank 2 and the error reported", s, got.Meta.Rank, e, rep.SVDRelError)
		}
		// At the update's own rank the product is unchanged.
		got, rep, err = AggregateReport(s, []*adapter.Update{u}, Options{LoRAMode: SVD})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if e := relErr(denseVector(got, "domain"), want); got.Meta.Rank != 4 || e > 1e-5 || rep.SVDRelError > 1e-5 {
			t.Fatalf("%s own rank: rank %d, error %.3g, reported %.3g", s, got.Meta.Rank, e, rep.SVDRelError)
		}
	}
}

// A module missing one half is refused in the product modes also when it
// is the only update (n = 1 is otherwise returned as it is).
func TestProductModeSingleUpdateNeedsPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	u := loraUpdate("solo", 4, 8, rng)
	delete(u.Groups["domain"], modA)
	for _, mode := range []LoRAMode{Exact, SVD} {
		if _, err := Aggregate("weighted_average", []*adapter.Update{u}, Options{LoRAMode: mode}); !contains(err, ErrNeedFactors, "group domain", "lora_A") {
			t.Fatalf("%s: %v", mode, err)
		}
	}
	if _, err := Aggregate("weighted_average", []*adapter.Update{u}, Options{}); err != nil {
		t.Fatalf("factor mode needs no pairs: %v", err)
	}
}

// An svd rank above what any module of the group can have (min(out, in)
// of its largest module) only pads every factor with zeros; a typo such
// as --rank 100000000 would allocate out·rank values per module and run
// out of memory. It is refused as a bad option naming the group and the
// bound, before anything is allocated; the bound itself is allowed (the
// smaller module is padded, so that every module has the one rank).
func TestSVDRankAboveEveryModuleIsRefused(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	us := []*adapter.Update{loraUpdate("a", 2, 0, rng), loraUpdate("b", 3, 0, rng), loraUpdate("c", 2, 0, rng)}
	for _, s := range []string{"weighted_average", "median", "krum"} {
		got, err := Aggregate(s, us, Options{LoRAMode: SVD, Rank: 9}) // 12×9 and 7×15: bound 9
		if err != nil || got.Meta.Rank != 9 {
			t.Fatalf("%s rank 9: %v", s, err)
		}
		for _, rank := range []int{10, 1 << 40} {
			_, err := Aggregate(s, us, Options{LoRAMode: SVD, Rank: rank})
			if !contains(err, ErrBadOption, "domain", fmt.Sprint(rank), "9") {
				t.Fatalf("%s rank %d: %v, want ErrBadOption naming group domain and the bound 9", s, rank, err)
			}
		}
	}
}
