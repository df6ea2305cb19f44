package privacy

import (
	"math"

	"github.com/dafnet/daf/adapter"
)

// clipSlack keeps a clipped update strictly inside the ball. Scaling in
// float32 rounds each value by at most 2⁻²⁴ relative (twice: the factor and
// the product), so the norm can grow by at most 1.2e-7 relative; a slack of
// 1e-6 absorbs that, and the Gaussian mechanism's guarantee rests on the
// bound holding exactly.
const clipSlack = 1 - 1e-6

// Clip scales u in place so that its joint L2 norm over every tensor of
// every group is at most bound, and returns the factor applied (1 when the
// update is already inside the ball). Clipping jointly makes one release
// one Gaussian mechanism of sensitivity bound, however many groups it has.
// A zero-norm update is left as it is (factor 1). A bound that is not a
// finite positive number, or an update holding NaN or ±Inf (whose norm is
// not a number), is left untouched with factor 1: PrepareRelease refuses
// both before clipping.
func Clip(u *adapter.Update, bound float64) (factor float64) {
	if !(bound > 0) || math.IsInf(bound, 0) {
		return 1
	}
	norm := u.L2()
	if !(norm > bound) || math.IsInf(norm, 0) {
		return 1
	}
	factor = bound / norm * clipSlack
	f32 := float32(factor)
	for _, ts := range u.Groups {
		for _, t := range ts {
			for i := range t.Data {
				t.Data[i] *= f32
			}
		}
	}
	return factor
}
