package schedule

import (
	"errors"
	"math"
	"testing"

	"github.com/dafnet/daf/config"
	"pgregory.net/rapid"
)

func seedGroups(t *testing.T) []Group {
	t.Helper()
	g, err := FromConfig(config.Default().Federation.DAF)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestFromConfigSeedGroups(t *testing.T) {
	got := seedGroups(t)
	want := []Group{
		{"coarse", 700, 1000, CoarseStructure, "weighted_average"},
		{"domain", 300, 700, DomainPatterns, "quality_weighted"},
		{"fine", 0, 300, FineRefinement, "trimmed_mean"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("group %d: got %+v want %+v", i, got[i], want[i])
		}
	}
}

func TestFromConfigRejectsBadTiling(t *testing.T) {
	d := config.Default().Federation.DAF
	d.DomainRange = [2]int{300, 650}
	if _, err := FromConfig(d); !errors.Is(err, ErrGroups) {
		t.Fatalf("gap: got %v", err)
	}
	d = config.Default().Federation.DAF
	d.FineRange = [2]int{0, 350}
	if _, err := FromConfig(d); !errors.Is(err, ErrGroups) {
		t.Fatalf("overlap: got %v", err)
	}
}

func TestLookupBoundaries(t *testing.T) {
	g := seedGroups(t)
	cases := map[int]string{0: "fine", 299: "fine", 300: "domain", 699: "domain", 700: "coarse", 999: "coarse", 1000: "coarse"}
	for ts, want := range cases {
		i, ok := Lookup(g, ts)
		if !ok || g[i].Name != want {
			t.Errorf("t=%d: got %d %v, want %s", ts, i, ok, want)
		}
	}
	for _, ts := range []int{-1, 1001} {
		if _, ok := Lookup(g, ts); ok {
			t.Errorf("t=%d found a group", ts)
		}
	}
}

func TestNoiseScheduleKnownValues(t *testing.T) {
	cases := []struct {
		s    NoiseSchedule
		t    int
		want float64
	}{
		{Linear{}, 0, 0}, {Linear{}, 250, 0.25}, {Linear{}, 1000, 1}, {Linear{}, -5, 0}, {Linear{}, 2000, 1},
		{Cosine{}, 0, 0}, {Cosine{}, 1000, 1},
		// 1 − cos²(π/2·(t/1000+s)/(1+s)) / cos²(π/2·s/(1+s)), evaluated separately.
		{Cosine{}, 500, 0.5061564095593623},
		{Cosine{}, 100, 0.02790726288603096},
		{Cosine{}, 900, 0.9759082758599141},
	}
	for _, c := range cases {
		if got := c.s.MaskRate(c.t); math.Abs(got-c.want) > 1e-7 {
			t.Errorf("%T(%d) = %v, want %v", c.s, c.t, got, c.want)
		}
	}
}

func TestNoiseSchedulesMonotone(t *testing.T) {
	for _, s := range []NoiseSchedule{Linear{}, Cosine{}} {
		prev := -1.0
		for ts := 0; ts <= MaxT; ts++ {
			r := s.MaskRate(ts)
			if r < prev || r < 0 || r > 1 || math.IsNaN(r) {
				t.Fatalf("%T: rate %v at t=%d after %v", s, r, ts, prev)
			}
			prev = r
		}
	}
}

func TestThresholdsOnLinearGiveSeedGroups(t *testing.T) {
	got, err := GroupsFromNoiseThresholds(Linear{}, []float64{0.3, 0.7}, []string{"coarse", "domain", "fine"})
	if err != nil {
		t.Fatal(err)
	}
	want := seedGroups(t)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("group %d: got %+v want %+v", i, got[i], want[i])
		}
	}
}

func TestThresholdsOnCosineNarrowTheMiddle(t *testing.T) {
	g, err := GroupsFromNoiseThresholds(Cosine{}, []float64{0.7, 0.3}, []string{"coarse", "domain", "fine"})
	if err != nil {
		t.Fatal(err)
	}
	// The boundaries are where the cosine mask rate first reaches 0.7 and 0.3.
	for i, rate := range []float64{0.7, 0.3} {
		b := g[i].Start
		if !(Cosine{}.MaskRate(b) >= rate && Cosine{}.MaskRate(b-1) < rate) {
			t.Errorf("boundary %d at t=%d does not straddle rate %v", i, b, rate)
		}
	}
	// Cosine changes fastest mid-way, so the same rates are reached at
	// t = 629 and 365 instead of 700 and 300.
	if g[0].Start != 629 || g[1].Start != 365 {
		t.Errorf("cosine boundaries %v, want 629 and 365", g)
	}
}

func TestThresholdErrors(t *testing.T) {
	names := []string{"a", "b", "c"}
	for _, th := range [][]float64{{0.5}, {0.5, 0.5}, {0, 0.5}, {0.5, 1}, {math.NaN(), 0.5}, {0.5001, 0.5002}} {
		if _, err := GroupsFromNoiseThresholds(Linear{}, th, names); !errors.Is(err, ErrGroups) {
			t.Errorf("thresholds %v: got %v", th, err)
		}
	}
	if _, err := GroupsFromNoiseThresholds(Linear{}, []float64{0.2, 0.4}, []string{"a", "a", "b"}); !errors.Is(err, ErrGroups) {
		t.Errorf("duplicate names: got %v", err)
	}
}

// Any valid thresholds on either schedule give groups that tile [0, MaxT],
// whose members have mask rates between their thresholds.
func TestThresholdGroupsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var s NoiseSchedule = Linear{}
		if rapid.Bool().Draw(rt, "cosine") {
			s = Cosine{}
		}
		n := rapid.IntRange(1, 4).Draw(rt, "cuts")
		cuts := make([]float64, n)
		names := []string{"g0"}
		for i := range cuts {
			cuts[i] = rapid.Float64Range(0.001, 0.999).Draw(rt, "cut")
			names = append(names, string(rune('g'))+string(rune('1'+i)))
		}
		groups, err := GroupsFromNoiseThresholds(s, cuts, names)
		if err != nil {
			if !errors.Is(err, ErrGroups) {
				rt.Fatalf("unexpected error %v", err)
			}
			return // thresholds too close to leave every group a timestep
		}
		if err := CheckTiling(groups); err != nil {
			rt.Fatal(err)
		}
		sorted := append([]float64{1}, cuts...)
		for i := range sorted {
			for j := i + 1; j < len(sorted); j++ {
				if sorted[j] > sorted[i] {
					sorted[i], sorted[j] = sorted[j], sorted[i]
				}
			}
		}
		sorted = append(sorted, 0)
		for i, g := range groups {
			for ts := g.Start; ts < g.End; ts++ {
				r := s.MaskRate(ts)
				if r < sorted[i+1] || (i > 0 && r >= sorted[i]) {
					rt.Fatalf("t=%d rate %v in group %d with cuts %v", ts, r, i, sorted)
				}
			}
		}
	})
}

func TestBlendHardMatchesLookup(t *testing.T) {
	g := seedGroups(t)
	for ts := 0; ts <= MaxT; ts++ {
		w := BlendWeights(g, ts, 0)
		i, _ := Lookup(g, ts)
		for j, x := range w {
			if (j == i) != (x == 1) || (j != i && x != 0) {
				t.Fatalf("t=%d: weights %v, lookup %d", ts, w, i)
			}
		}
	}
}

func TestBlendKnownValues(t *testing.T) {
	g := seedGroups(t) // coarse, domain, fine
	cases := []struct {
		t, width int
		want     []float64
	}{
		{700, 100, []float64{0.5, 0.5, 0}},
		{725, 100, []float64{0.75, 0.25, 0}},
		{750, 100, []float64{1, 0, 0}},
		{500, 100, []float64{0, 1, 0}},
		{1000, 100, []float64{1, 0, 0}},
		{0, 100, []float64{0, 0, 1}},
		{10, 100, []float64{0, 0, 1}},
		// A window wider than the domain group spans all three.
		{500, 1000, []float64{0.3, 0.4, 0.3}},
	}
	for _, c := range cases {
		w := BlendWeights(g, c.t, c.width)
		for i := range w {
			if math.Abs(w[i]-c.want[i]) > 1e-12 {
				t.Errorf("t=%d width=%d: got %v want %v", c.t, c.width, w, c.want)
				break
			}
		}
	}
}

// Blend weights on random tilings: in [0, 1], summing to 1, changing by at
// most 4/width per unit t, equal to the hard assignment one width away from
// every boundary.
func TestBlendProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		k := rapid.IntRange(1, 5).Draw(rt, "groups")
		cuts := map[int]bool{}
		for len(cuts) < k-1 {
			cuts[rapid.IntRange(1, MaxT-1).Draw(rt, "cut")] = true
		}
		bounds := []int{0}
		for c := 1; c < MaxT; c++ {
			if cuts[c] {
				bounds = append(bounds, c)
			}
		}
		bounds = append(bounds, MaxT)
		groups := make([]Group, k)
		for i := range groups {
			groups[i] = Group{Name: string(rune('a' + i)), Start: bounds[i], End: bounds[i+1]}
		}
		width := rapid.IntRange(0, 1200).Draw(rt, "width")
		ts := rapid.IntRange(0, MaxT-1).Draw(rt, "t")
		w0, w1 := BlendWeights(groups, ts, width), BlendWeights(groups, ts+1, width)
		for _, w := range [][]float64{w0, w1} {
			var sum float64
			for _, x := range w {
				if x < 0 || x > 1 || math.IsNaN(x) {
					rt.Fatalf("weight %v out of [0,1]: %v", x, w)
				}
				sum += x
			}
			if math.Abs(sum-1) > 1e-12 {
				rt.Fatalf("weights sum to %v: %v", sum, w)
			}
		}
		if width > 0 {
			for i := range w0 {
				if d := math.Abs(w1[i] - w0[i]); d > 4/float64(width)+1e-12 {
					rt.Fatalf("weight %d jumps by %v from t=%d to %d (width %d)", i, d, ts, ts+1, width)
				}
			}
		}
		far := true
		for _, b := range bounds[1 : len(bounds)-1] {
			if 2*abs(ts-b) <= width {
				far = false
			}
		}
		if far {
			hard := BlendWeights(groups, ts, 0)
			for i := range hard {
				if math.Abs(hard[i]-w0[i]) > 1e-12 {
					rt.Fatalf("t=%d far from boundaries: blended %v, hard %v", ts, w0, hard)
				}
			}
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestBlendWithoutCoverageFallsBackToNearest(t *testing.T) {
	g := []Group{{Name: "low", Start: 0, End: 100}, {Name: "high", Start: 900, End: 1000}}
	w := BlendWeights(g, 800, 10)
	if w[0] != 0 || w[1] != 1 {
		t.Fatalf("got %v", w)
	}
	if BlendWeights(nil, 5, 10) != nil {
		t.Fatal("no groups should give no weights")
	}
}
