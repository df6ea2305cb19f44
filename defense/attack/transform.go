package attack

import (
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// SignFlip returns −u. The metadata (source, round) is u's: the attacker
// sends the flipped update as itself.
func SignFlip(u *adapter.Update) *adapter.Update {
	return Scale(u, -1)
}

// Scale returns factor·u with u's metadata.
func Scale(u *adapter.Update, factor float64) *adapter.Update {
	out := u.Clone()
	forEachTensor(out, func(t *adapter.Tensor) {
		for i, v := range t.Data {
			t.Data[i] = float32(float64(v) * factor)
		}
	})
	return out
}

// GaussianNoise returns u plus independent N(0, std²) noise on every value,
// with u's metadata.
func GaussianNoise(u *adapter.Update, std float64, rng *rand.Rand) *adapter.Update {
	out := u.Clone()
	forEachTensor(out, func(t *adapter.Tensor) {
		for i, v := range t.Data {
			t.Data[i] = float32(float64(v) + std*rng.NormFloat64())
		}
	})
	return out
}

// forEachTensor visits tensors in sorted group and key order, so random
// draws land on the same values on every run.
func forEachTensor(u *adapter.Update, fn func(t *adapter.Tensor)) {
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			fn(u.Groups[g][k])
		}
	}
}
