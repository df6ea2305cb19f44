package aggregate

import (
	"errors"
	"math"
	"strings"

	"github.com/dafnet/daf/adapter"
	"pgregory.net/rapid"
)

// vecUpdate is an update with one group "g" holding one 1-D tensor "w".
func vecUpdate(node string, samples float64, v ...float32) *adapter.Update {
	u := adapter.New()
	u.Meta.Node = node
	u.Meta.Samples = samples
	u.Set("g", "w", &adapter.Tensor{Shape: []int{len(v)}, Data: append([]float32(nil), v...)})
	return u
}

// flat returns every tensor of a group of u, concatenated in key order, in
// float64.
func flat(u *adapter.Update, group string) []float64 {
	var out []float64
	for _, k := range u.Keys(group) {
		for _, v := range u.Groups[group][k].Data {
			out = append(out, float64(v))
		}
	}
	return out
}

func flats(us []*adapter.Update, group string) [][]float64 {
	out := make([][]float64, len(us))
	for i, u := range us {
		out[i] = flat(u, group)
	}
	return out
}

// assertClose fails unless |got − want| ≤ tol·scale element-wise, where
// scale is the largest |value| among the inputs (at least 1e-30).
// failer is what assertClose needs of *testing.T and *rapid.T.
type failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

func assertClose(t failer, what string, got, want []float64, tol, scale float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); !(d <= tol*max(scale, 1e-30)) {
			t.Fatalf("%s: element %d = %v, want %v (|diff| %g > %g·%g)", what, i, got[i], want[i], d, tol, scale)
		}
	}
}

func maxAbs(xs [][]float64) float64 {
	var m float64
	for _, x := range xs {
		for _, v := range x {
			m = max(m, math.Abs(v))
		}
	}
	return m
}

// genUpdates draws n updates with the same two tensors (shapes drawn once),
// values of mixed magnitudes, positive sample counts and quality reports.
func genUpdates(t *rapid.T, minN, maxN int) []*adapter.Update {
	n := rapid.IntRange(minN, maxN).Draw(t, "n")
	rows := rapid.IntRange(1, 9).Draw(t, "rows")
	cols := rapid.IntRange(1, 40).Draw(t, "cols")
	size := rapid.IntRange(1, 70).Draw(t, "size")
	scale := rapid.SampledFrom([]float64{1e-3, 1, 1e3}).Draw(t, "scale")
	out := make([]*adapter.Update, n)
	for i := range out {
		u := adapter.New()
		u.Meta.Node = string(rune('a'+i%26)) + string(rune('0'+i/26))
		u.Meta.Samples = float64(rapid.IntRange(1, 1000).Draw(t, "samples"))
		u.Meta.Quality = map[string]adapter.GroupQuality{"g": {
			PPLBefore:    rapid.Float64Range(1, 50).Draw(t, "before"),
			PPLAfter:     rapid.Float64Range(1, 50).Draw(t, "after"),
			TaskAccuracy: map[string]float64{"qa": rapid.Float64Range(0, 1).Draw(t, "acc")},
		}}
		a := adapter.NewTensor(rows, cols)
		b := adapter.NewTensor(size)
		for _, tt := range []*adapter.Tensor{a, b} {
			for e := range tt.Data {
				tt.Data[e] = float32(scale * rapid.Float64Range(-1, 1).Draw(t, "x"))
			}
		}
		u.Set("g", "layer.weight", a)
		u.Set("g", "head.bias", b)
		out[i] = u
	}
	return out
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func stringsContains(s, sub string) bool { return strings.Contains(s, sub) }
