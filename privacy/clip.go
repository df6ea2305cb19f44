package privacy

import (
	"math"

	"github.com/dafnet/daf/adapter"
)

// clipSlack keeps a clipped update strictly inside the ball: float32
// rounding of the scaled values could otherwise leave its norm a few ulp
// above the bound, and the Gaussian mechanism's guarantee rests on the
// bound holding exactly.
const clipSlack = 1 - 1e-9

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
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			data := u.Groups[g][k].Data
			for i, v := range data {
				data[i] = roundTowardZero32(float64(v) * factor)
			}
		}
	}
	return factor
}

// roundTowardZero32 converts to float32 without ever increasing the
// magnitude, so no scaled value grows in the conversion.
func roundTowardZero32(x float64) float32 {
	f := float32(x)
	if math.Abs(float64(f)) > math.Abs(x) {
		f = math.Nextafter32(f, 0)
	}
	return f
}
