package attack

import (
	"math"

	"github.com/dafnet/daf/adapter"
)

// LittleIsEnough returns mean − z·std, per coordinate, over the honest
// updates (population standard deviation). The tensor set is honest[0]'s;
// a coordinate's statistics use the honest updates that carry that tensor
// with the same shape. The metadata is honest[0]'s with the source cleared:
// the caller names the colluder sending it. Nil when honest has no update.
func LittleIsEnough(honest []*adapter.Update, z float64) *adapter.Update {
	return combine(honest, func(values []float64) float64 {
		mean, std := meanStd(values)
		return mean - z*std
	})
}

// InnerProduct returns −eps × the coordinate-wise honest mean, with the
// same tensor set, metadata and nil case as LittleIsEnough.
func InnerProduct(honest []*adapter.Update, eps float64) *adapter.Update {
	return combine(honest, func(values []float64) float64 {
		mean, _ := meanStd(values)
		return -eps * mean
	})
}

func combine(honest []*adapter.Update, per func(values []float64) float64) *adapter.Update {
	var first *adapter.Update
	for _, u := range honest {
		if u != nil {
			first = u
			break
		}
	}
	if first == nil {
		return nil
	}
	out := first.Clone()
	out.Meta.Node = ""
	values := make([]float64, 0, len(honest))
	for _, g := range out.GroupNames() {
		for _, k := range out.Keys(g) {
			t := out.Groups[g][k]
			var peers []*adapter.Tensor
			for _, u := range honest {
				if u == nil {
					continue
				}
				if p := u.Get(g, k); p != nil && p.SameShape(t) && len(p.Data) == len(t.Data) {
					peers = append(peers, p)
				}
			}
			for i := range t.Data {
				values = values[:0]
				for _, p := range peers {
					values = append(values, float64(p.Data[i]))
				}
				t.Data[i] = float32(per(values))
			}
		}
	}
	return out
}

func meanStd(xs []float64) (mean, std float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)))
}
