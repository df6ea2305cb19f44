package defense

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/dafnet/daf/adapter"
	"pgregory.net/rapid"
)

// The fast paths (one fused scan per update, Sybil pairs settled early,
// deltas taken on the fly) are checked against deliberately plain versions:
// the straightforward loops they replace, run on materialised deltas.

// slowSketch is the count sketch written as plainly as possible.
func slowSketch(u *adapter.Update) []float64 {
	out := make([]float64, SketchDims)
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			h := fnv.New64a()
			h.Write([]byte(g + "/" + k))
			seed := h.Sum64()
			for i, v := range u.Groups[g][k].Data {
				r := splitmix64(seed + uint64(i)*0x9e3779b97f4a7c15)
				if r>>63 == 1 {
					out[r%SketchDims] -= float64(v)
				} else {
					out[r%SketchDims] += float64(v)
				}
			}
		}
	}
	return out
}

// slowDelta materialises u − base the way the daemon used to.
func slowDelta(u, base *adapter.Update) (*adapter.Update, error) {
	d := u.Clone()
	if base == nil {
		return d, nil
	}
	for _, g := range d.GroupNames() {
		for _, k := range d.Keys(g) {
			t, b := d.Get(g, k), base.Get(g, k)
			if b == nil {
				continue
			}
			if !b.SameShape(t) {
				return nil, ErrShapeMismatch
			}
			for i := range t.Data {
				t.Data[i] -= b.Data[i]
			}
		}
	}
	return d, nil
}

// slowSybil is the seed's detect_sybil with every pair's cosine summed in
// full over materialised deltas.
func slowSybil(in []SybilInput, cfg Config) ([]string, error) {
	type vec struct {
		node string
		u    *adapter.Update
		norm float64
	}
	var vs []vec
	for _, x := range in {
		if x.Update == nil || x.Node == "" {
			continue
		}
		d, err := slowDelta(x.Update, x.Base)
		if err != nil {
			return nil, err
		}
		if d.CheckFinite() != nil || d.L2() == 0 {
			continue
		}
		vs = append(vs, vec{x.Node, d, d.L2()})
	}
	cos := func(a, b vec) float64 {
		var s float64
		for _, g := range a.u.GroupNames() {
			for _, k := range a.u.Keys(g) {
				ta, tb := a.u.Get(g, k), b.u.Get(g, k)
				if tb == nil || !ta.SameShape(tb) {
					continue
				}
				for i := range ta.Data {
					s += float64(ta.Data[i]) * float64(tb.Data[i])
				}
			}
		}
		return min(s/(a.norm*b.norm), 1)
	}
	// Components by repeated merging, the plainest single linkage.
	comp := make([]int, len(vs))
	for i := range comp {
		comp[i] = i
	}
	for i := range vs {
		for j := range vs {
			if i < j && cos(vs[i], vs[j]) > cfg.SybilSimilarity {
				from, to := comp[j], comp[i]
				for k := range comp {
					if comp[k] == from {
						comp[k] = to
					}
				}
			}
		}
	}
	members := map[int]map[string]bool{}
	for i, v := range vs {
		if members[comp[i]] == nil {
			members[comp[i]] = map[string]bool{}
		}
		members[comp[i]][v.node] = true
	}
	var flagged []string
	for _, m := range members {
		if len(m) >= cfg.SybilMinCluster {
			ids := sortedKeys(m)
			flagged = append(flagged, ids[1:]...)
		}
	}
	sort.Strings(flagged)
	return slices.Compact(flagged), nil
}

func TestSketchMatchesPlainLoop(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 7))
		u := adapter.New()
		for g := range rapid.IntRange(1, 3).Draw(t, "groups") {
			for k := range rapid.IntRange(1, 3).Draw(t, "keys") {
				tt := adapter.NewTensor(rapid.SampledFrom([]int{0, 1, 7, 1023, 1024, 3000, 70000}).Draw(t, "n"))
				for i := range tt.Data {
					tt.Data[i] = float32(rng.NormFloat64())
				}
				if rapid.Bool().Draw(t, "zeros") {
					clear(tt.Data[:len(tt.Data)/2])
				}
				u.Set(fmt.Sprintf("g%d", g), fmt.Sprintf("k%d", k), tt)
			}
		}
		if got, want := sketch(u), slowSketch(u); !reflect.DeepEqual(got, want) {
			t.Fatal("fused sketch differs from the plain loop")
		}
		// From a base, by table or by hash, the sketch is that of the
		// materialised delta.
		base := u.Clone()
		for _, ts := range base.Groups {
			for _, tt := range ts {
				for i := range tt.Data {
					tt.Data[i] = float32(rng.NormFloat64())
				}
			}
		}
		d, _ := slowDelta(u, base)
		s, err := scanUpdate(u, base, true)
		if err != nil || !reflect.DeepEqual(s.dir, slowSketch(d)) {
			t.Fatalf("sketch from a base differs from the delta's (%v)", err)
		}
	})
}

// The bucket-and-sign tables are bounded: a table that would not fit
// empties the cache first, and one larger than the whole cache is made
// but not kept. A table is the same whether made or found.
func TestSketchTableCacheBounded(t *testing.T) {
	c := newSketchTableCache(5000)
	a := c.get("g", "a", 3000)
	if &c.get("g", "a", 3000)[0] != &a[0] {
		t.Fatal("second get made a new table")
	}
	if c.entries != 3000 {
		t.Fatalf("%d entries held, want 3000", c.entries)
	}
	b := c.get("g", "b", 3000) // does not fit beside a: a goes
	if _, held := c.tables[sketchTableKey{"g", "a", 3000}]; held || c.entries != 3000 {
		t.Fatalf("cache over its bound: %d entries, a still held %v", c.entries, held)
	}
	big := c.get("g", "c", 6000)
	if len(c.tables) != 0 || c.entries != 0 {
		t.Fatalf("a table larger than the cache was kept (%d entries)", c.entries)
	}
	if len(b) != 3000 || len(big) != 6000 {
		t.Fatalf("tables of %d and %d values, want 3000 and 6000", len(b), len(big))
	}
	if !reflect.DeepEqual(a, makeSketchTable(tensorSeed("g", "a"), 3000)) {
		t.Fatal("cached table differs from a fresh one")
	}
}

// sybilCase draws a round of updates: some independent, some near copies
// of one another at a cosine drawn around the threshold, some with a
// tensor the others lack or a different shape, some all zero or holding a
// NaN, optionally judged against a base model.
func sybilCase(t *rapid.T) ([]SybilInput, Config) {
	rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 11))
	size := rapid.IntRange(1, 20000).Draw(t, "size")
	var base *adapter.Update
	if rapid.Bool().Draw(t, "base") {
		base = randomTwoTensor(rng, "", size, 1)
	}
	proto := randomTwoTensor(rng, "proto", size, 1)
	var in []SybilInput
	for i := range rapid.IntRange(0, 9).Draw(t, "updates") {
		node := fmt.Sprintf("n%02d", i)
		var u *adapter.Update
		switch rapid.IntRange(0, 5).Draw(t, "kind") {
		case 0, 1: // independent
			u = randomTwoTensor(rng, node, size, 1)
		case 2: // a near copy of proto: noise scale around the 0.99 cosine
			u = proto.Clone()
			noise := rapid.Float64Range(0, 0.3).Draw(t, "noise")
			for _, g := range u.GroupNames() {
				for _, k := range u.Keys(g) {
					tt := u.Get(g, k)
					for j := range tt.Data {
						tt.Data[j] += float32(noise * rng.NormFloat64())
					}
				}
			}
		case 3: // a tensor no one else has
			u = randomTwoTensor(rng, node, size, 1)
			u.Set("fine", "extra", adapter.NewTensor(7))
			u.Get("fine", "extra").Data[0] = 1
		case 4: // all zero
			u = randomTwoTensor(rng, node, size, 0)
		case 5: // a NaN
			u = randomTwoTensor(rng, node, size, 1)
			u.Get("coarse", "a").Data[0] = float32(math.NaN())
		}
		if base != nil {
			// Adapters are judged by their delta from the base: add it, so
			// the delta is the drawn vector.
			for _, g := range base.GroupNames() {
				for _, k := range base.Keys(g) {
					if tt := u.Get(g, k); tt != nil {
						for j := range tt.Data {
							tt.Data[j] += base.Get(g, k).Data[j]
						}
					}
				}
			}
		}
		u.Meta.Node = node
		in = append(in, SybilInput{Node: node, Update: u, Base: base})
	}
	cfg := DefaultConfig()
	cfg.SybilSimilarity = rapid.SampledFrom([]float64{0.99, 0.95, 0.5, 1}).Draw(t, "threshold")
	cfg.SybilMinCluster = rapid.IntRange(2, 4).Draw(t, "min_cluster")
	return in, cfg
}

func randomTwoTensor(rng *rand.Rand, node string, size int, scale float64) *adapter.Update {
	u := adapter.New()
	u.Meta.Node = node
	for _, k := range []string{"a", "b"} {
		tt := adapter.NewTensor(size)
		for i := range tt.Data {
			tt.Data[i] = float32(scale * rng.NormFloat64())
		}
		u.Set("coarse", k, tt)
	}
	return u
}

func TestPropertySybilMatchesFullSums(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in, cfg := sybilCase(t)
		got, err := DetectSybilFrom(in, cfg)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := slowSybil(in, cfg)
		if !slices.Equal(got, want) {
			t.Fatalf("flagged %v, full sums flag %v", got, want)
		}
	})
}

// A pair just above the threshold is linked and one just below is not:
// the early exit never settles a pair the full sum would link.
func TestSybilEarlyExitAtTheThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	const size = 200_000
	a := randomTwoTensor(rng, "a", size, 1)
	noise := randomTwoTensor(rng, "noise", size, 1)
	for _, want := range []float64{0.98999, 0.99001} {
		// b = a + λ·noise with cos(a, b) = want (a, noise nearly orthogonal).
		lambda := math.Sqrt(1/(want*want) - 1)
		b := a.Clone()
		for _, k := range []string{"a", "b"} {
			for i := range b.Get("coarse", k).Data {
				b.Get("coarse", k).Data[i] += float32(lambda) * noise.Get("coarse", k).Data[i]
			}
		}
		b.Meta.Node = "b"
		in := []SybilInput{{Node: "a", Update: a}, {Node: "b", Update: b}}
		cfg := DefaultConfig()
		cfg.SybilMinCluster = 2
		got, _ := DetectSybilFrom(in, cfg)
		full, _ := slowSybil(in, cfg)
		if !slices.Equal(got, full) {
			t.Fatalf("cos ≈ %v: flagged %v, full sums %v", want, got, full)
		}
	}
}

func TestSybilShapeMismatchWithBase(t *testing.T) {
	base := vec("", 1, 2, 3)
	u := vec("x", 1, 2)
	_, err := DetectSybilFrom([]SybilInput{{Node: "x", Update: u, Base: base}}, DefaultConfig())
	if !errors.Is(err, ErrShapeMismatch) {
		t.Fatalf("err = %v, want ErrShapeMismatch", err)
	}
}

// ValidateFrom(u, base) is Validate of the materialised delta: the same
// verdicts and the same statistics afterwards, update after update.
func TestPropertyValidateFromIsValidateOfDelta(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 13))
		size := rapid.IntRange(1, 3000).Draw(t, "size")
		fast := NewDetector(DefaultConfig(), NewMemoryStatsStore())
		slow := NewDetector(DefaultConfig(), NewMemoryStatsStore())
		base := randomTwoTensor(rng, "", size, 1)
		for i := range rapid.IntRange(1, 30).Draw(t, "updates") {
			node := fmt.Sprintf("n%d", i%4)
			scale := rapid.SampledFrom([]float64{1, 1, 1, -1, 30}).Draw(t, "scale")
			u := randomTwoTensor(rng, node, size, 0.1)
			for _, k := range []string{"a", "b"} {
				for j := range u.Get("coarse", k).Data {
					u.Get("coarse", k).Data[j] = float32(scale)*u.Get("coarse", k).Data[j] + base.Get("coarse", k).Data[j]
				}
			}
			d, err := slowDelta(u, base)
			if err != nil {
				t.Fatal(err)
			}
			got, err1 := fast.ValidateFrom(u, base)
			want, err2 := slow.Validate(d)
			if (err1 == nil) != (err2 == nil) || got.Outcome != want.Outcome || got.Reason != want.Reason {
				t.Fatalf("update %d: ValidateFrom %v (%v), Validate of the delta %v (%v)", i, got, err1, want, err2)
			}
		}
		for n := range 4 {
			node := fmt.Sprintf("n%d", n)
			a, _, _ := fast.store.LoadStats(node)
			b, _, _ := slow.store.LoadStats(node)
			if a.Accepted != b.Accepted || a.FlipHistory != b.FlipHistory ||
				math.Abs(a.MeanMagnitude-b.MeanMagnitude) > 1e-9*b.MeanMagnitude {
				t.Fatalf("%s: stats %+v, want %+v", node, a, b)
			}
		}
	})
}
