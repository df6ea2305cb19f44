package schedule

import "math"

// BlendWeights returns, for each group, the weight of its LoRA bank at t.
// With width 0 the assignment is hard: weight 1 for the group holding t
// (Lookup), 0 for the others. With width > 0 each weight is the share of the
// window [t − width/2, t + width/2] (clipped to [0, MaxT]) that lies in the
// group's range, which is a box-filtered version of the hard assignment:
// every weight is in [0, 1], the weights sum to 1 when the groups tile
// [0, MaxT], and each weight changes by at most 4/width per unit of t, so
// banks fade into each other over about width timesteps around a boundary
// and are used alone away from it.
//
// t outside [0, MaxT] is clamped. If no group covers any of the window
// (groups that do not tile), the nearest group gets weight 1, so the result
// always sums to 1 for a non-empty slice of groups; a negative width counts
// as 0.
func BlendWeights(groups []Group, t int, width int) []float64 {
	if len(groups) == 0 {
		return nil
	}
	t = clampT(t)
	w := make([]float64, len(groups))
	if width <= 0 {
		if i, ok := Lookup(groups, t); ok {
			w[i] = 1
		} else {
			w[nearest(groups, float64(t))] = 1
		}
		return w
	}
	lo := math.Max(0, float64(t)-float64(width)/2)
	hi := math.Min(MaxT, float64(t)+float64(width)/2)
	var total float64
	for i, g := range groups {
		overlap := math.Min(hi, float64(g.End)) - math.Max(lo, float64(g.Start))
		if overlap > 0 {
			w[i] = overlap
			total += overlap
		}
	}
	if total == 0 {
		w[nearest(groups, float64(t))] = 1
		return w
	}
	for i := range w {
		w[i] /= total
	}
	return w
}

// nearest is the index of the group whose range is closest to t.
func nearest(groups []Group, t float64) int {
	best, bestDist := 0, math.Inf(1)
	for i, g := range groups {
		d := math.Max(0, math.Max(float64(g.Start)-t, t-float64(g.End)))
		if d < bestDist {
			best, bestDist = i, d
		}
	}
	return best
}
