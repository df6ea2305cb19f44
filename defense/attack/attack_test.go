package attack

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/dafnet/daf/adapter"
	"pgregory.net/rapid"
)

func upd(node string, groups map[string][]float32) *adapter.Update {
	u := adapter.New()
	u.Meta.Node = node
	u.Meta.Round = 7
	for g, vals := range groups {
		t := adapter.NewTensor(len(vals))
		copy(t.Data, vals)
		u.Set(g, "m.lora_A.weight", t)
	}
	return u
}

func values(u *adapter.Update) []float32 {
	var out []float32
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			out = append(out, u.Groups[g][k].Data...)
		}
	}
	return out
}

func cos(a, b *adapter.Update) float64 {
	va, vb := values(a), values(b)
	var ab, aa, bb float64
	for i := range va {
		ab += float64(va[i]) * float64(vb[i])
		aa += float64(va[i]) * float64(va[i])
		bb += float64(vb[i]) * float64(vb[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func TestSignFlipAndScale(t *testing.T) {
	u := upd("a", map[string][]float32{"coarse": {1, -2, 3}, "fine": {0.5}})
	orig := u.Clone()
	f := SignFlip(u)
	if !reflect.DeepEqual(values(f), []float32{-1, 2, -3, -0.5}) || f.Meta.Node != "a" || f.Meta.Round != 7 {
		t.Errorf("SignFlip: %v %+v", values(f), f.Meta)
	}
	s := Scale(u, 10)
	if !reflect.DeepEqual(values(s), []float32{10, -20, 30, 5}) {
		t.Errorf("Scale: %v", values(s))
	}
	if !reflect.DeepEqual(u, orig) {
		t.Error("input modified")
	}
}

func TestGaussianNoise(t *testing.T) {
	vals := make([]float32, 100000)
	for i := range vals {
		vals[i] = float32(i % 7)
	}
	u := upd("a", map[string][]float32{"coarse": vals})
	a := GaussianNoise(u, 3, rand.New(rand.NewPCG(1, 1)))
	b := GaussianNoise(u, 3, rand.New(rand.NewPCG(1, 1)))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different noise")
	}
	var sum, sq float64
	va := values(a)
	for i, v := range va {
		d := float64(v) - float64(vals[i])
		sum += d
		sq += d * d
	}
	n := float64(len(va))
	mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
	// Standard errors: 3/√n ≈ 0.0095 for the mean, ≈ 0.0067 for the std.
	if math.Abs(mean) > 0.04 || math.Abs(std-3) > 0.03 {
		t.Errorf("noise mean %v std %v, want 0 and 3", mean, std)
	}
	if values(u)[1] != 1 {
		t.Error("input modified")
	}
}

func TestLittleIsEnoughAndInnerProductKnownValues(t *testing.T) {
	honest := []*adapter.Update{
		upd("a", map[string][]float32{"coarse": {1, 3}, "fine": {2}}),
		upd("b", map[string][]float32{"coarse": {3, 5}, "fine": {4}}),
		// A mis-shaped tensor is left out of its coordinate's statistics.
		upd("c", map[string][]float32{"coarse": {100, 100, 100}, "fine": {6}}),
	}
	lie := LittleIsEnough(honest, 1.5)
	// coarse: mean (2, 4), std (1, 1); fine: mean 4, std √(8/3).
	want := []float32{0.5, 2.5, float32(4 - 1.5*math.Sqrt(8.0/3))}
	if got := values(lie); !close32(got, want) {
		t.Errorf("LittleIsEnough = %v, want %v", got, want)
	}
	if lie.Meta.Node != "" || lie.Meta.Round != 7 {
		t.Errorf("metadata %+v: want honest[0]'s with no source", lie.Meta)
	}
	ipm := InnerProduct(honest, 0.5)
	if got := values(ipm); !close32(got, []float32{-1, -2, -2}) {
		t.Errorf("InnerProduct = %v", got)
	}
	if LittleIsEnough(nil, 1) != nil || InnerProduct([]*adapter.Update{nil}, 1) != nil {
		t.Error("no honest update should give nil")
	}
}

func close32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-6 {
			return false
		}
	}
	return true
}

// LittleIsEnough against a slow per-coordinate float64 statement.
func TestPropertyLittleIsEnoughMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 8).Draw(t, "nodes")
		size := rapid.IntRange(1, 20).Draw(t, "size")
		z := rapid.Float64Range(-3, 3).Draw(t, "z")
		var honest []*adapter.Update
		for range n {
			vals := make([]float32, size)
			for j := range vals {
				vals[j] = float32(rapid.Float64Range(-10, 10).Draw(t, "v"))
			}
			honest = append(honest, upd("h", map[string][]float32{"coarse": vals}))
		}
		got := values(LittleIsEnough(honest, z))
		for j := range size {
			var mean float64
			for _, u := range honest {
				mean += float64(values(u)[j])
			}
			mean /= float64(n)
			var v float64
			for _, u := range honest {
				d := float64(values(u)[j]) - mean
				v += d * d
			}
			want := mean - z*math.Sqrt(v/float64(n))
			if math.Abs(float64(got[j])-want) > 1e-4*(1+math.Abs(want)) {
				t.Fatalf("coordinate %d: %v, want %v", j, got[j], want)
			}
		}
	})
}

func TestSybilClones(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	u := HonestNonIID(rng, 1, 1, DefaultHonestParams())[0][0]
	clones := SybilClones(u, 5, 0.05, rand.New(rand.NewPCG(9, 9)))
	again := SybilClones(u, 5, 0.05, rand.New(rand.NewPCG(9, 9)))
	if len(clones) != 5 || !reflect.DeepEqual(clones, again) {
		t.Fatal("want 5 clones, the same for the same seed")
	}
	for i, c := range clones {
		if c.Meta.Node != "honest-00-sybil-"+string(rune('0'+i)) {
			t.Errorf("clone %d named %q", i, c.Meta.Node)
		}
		diff := Scale(u, -1)
		for _, g := range c.GroupNames() {
			for _, k := range c.Keys(g) {
				for j, v := range c.Groups[g][k].Data {
					diff.Groups[g][k].Data[j] += v
				}
			}
		}
		if r := diff.L2() / u.L2(); math.Abs(r-0.05) > 1e-4 {
			t.Errorf("clone %d perturbation %.5f × ‖u‖, want 0.05", i, r)
		}
		if c := cos(c, u); math.Abs(c-1/math.Sqrt(1+0.0025)) > 0.002 {
			t.Errorf("clone %d cosine %.5f", i, c)
		}
	}
	if SybilClones(u, 0, 0.1, rng) != nil {
		t.Error("n = 0 should give no clones")
	}
}

func TestHonestNonIIDShape(t *testing.T) {
	p := DefaultHonestParams()
	a := HonestNonIID(rand.New(rand.NewPCG(5, 5)), 6, 4, p)
	b := HonestNonIID(rand.New(rand.NewPCG(5, 5)), 6, 4, p)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different federation")
	}
	if len(a) != 4 || len(a[0]) != 6 {
		t.Fatalf("got %d rounds × %d nodes", len(a), len(a[0]))
	}
	for r, us := range a {
		for i, u := range us {
			if u.Meta.Node != HonestNodeID(i) || u.Meta.Round != uint64(r) || u.Meta.Samples < 50 || u.Meta.Samples >= 500 {
				t.Errorf("round %d node %d metadata %+v", r, i, u.Meta)
			}
			if u.Meta.Samples != a[0][i].Meta.Samples {
				t.Errorf("node %d sample count changed between rounds", i)
			}
			if !reflect.DeepEqual(u.GroupNames(), []string{"coarse", "domain", "fine"}) {
				t.Fatalf("groups %v", u.GroupNames())
			}
			for _, k := range u.Keys("coarse") {
				_, f, ok := adapter.SplitLoRAKey(k)
				shape := u.Groups["coarse"][k].Shape
				if !ok || !strings.HasPrefix(k, "base_model.model.layers.") ||
					(f == "A" && !reflect.DeepEqual(shape, []int{p.Rank, p.Dim})) || (f == "B" && !reflect.DeepEqual(shape, []int{p.Dim, p.Rank})) {
					t.Fatalf("tensor %s shape %v", k, shape)
				}
			}
			if len(u.Keys("coarse")) != p.Layers*4 {
				t.Fatalf("%d tensors per group", len(u.Keys("coarse")))
			}
		}
	}
	if HonestNonIID(rand.New(rand.NewPCG(1, 1)), 0, 3, p) != nil {
		t.Error("no nodes should give nil")
	}
}

func groupNorm(u *adapter.Update, g string) float64 {
	var s float64
	for _, t := range u.Groups[g] {
		for _, v := range t.Data {
			s += float64(v) * float64(v)
		}
	}
	return math.Sqrt(s)
}

// The statistics DefaultHonestParams promises: group norm ratios, the
// per-round decay, and the cosines within and across nodes.
func TestHonestNonIIDStatistics(t *testing.T) {
	p := DefaultHonestParams()
	const nodes, rounds = 40, 11
	fed := HonestNonIID(rand.New(rand.NewPCG(8, 8)), nodes, rounds, p)
	meanNorm := func(r int, g string) float64 {
		var s float64
		for _, u := range fed[r] {
			s += groupNorm(u, g)
		}
		return s / nodes
	}
	c0 := meanNorm(0, "coarse")
	for g, want := range map[string]float64{"domain": 0.6, "fine": 0.3} {
		if got := meanNorm(0, g) / c0; math.Abs(got-want) > 0.05 {
			t.Errorf("%s/coarse norm ratio %.3f, want %.2f", g, got, want)
		}
	}
	if got, want := meanNorm(10, "coarse")/c0, math.Pow(p.NormDecay, 10); math.Abs(got-want) > 0.05 {
		t.Errorf("decay over 10 rounds %.3f, want %.3f", got, want)
	}
	var same, cross float64
	var ns, nc int
	for r := 1; r < rounds; r++ {
		for i := range nodes {
			same += cos(fed[r][i], fed[r-1][i])
			ns++
			cross += cos(fed[r][i], fed[r][(i+1)%nodes])
			nc++
		}
	}
	same /= float64(ns)
	cross /= float64(nc)
	// 1.64/2.64 ≈ 0.62 and 1/2.64 ≈ 0.38 from the relative norms 1, 0.8, 1.
	if math.Abs(same-0.62) > 0.06 || math.Abs(cross-0.38) > 0.06 {
		t.Errorf("cosine within a node %.3f (want ≈ 0.62), across nodes %.3f (want ≈ 0.38)", same, cross)
	}
}
