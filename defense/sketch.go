package defense

import (
	"math"

	"github.com/dafnet/daf/adapter"
)

// SketchDims is the length of the direction sketch kept per node.
//
// A node's reference direction is stored as a count sketch of the update
// (each value added, with a pseudo-random sign, into one of SketchDims
// buckets chosen by a hash of its group, key and index) instead of the full
// vector, so NodeStats stays a few kilobytes whatever the model size. The
// sketch is linear and preserves inner products in expectation; for
// unrelated directions the cosine error has standard deviation about
// 1/√SketchDims ≈ 0.03, small against the −0.5 flip threshold. Sybil
// clustering, whose threshold is 0.99, uses exact cosines instead.
const SketchDims = 1024

// sketch returns the count sketch of u: each value added, with the sign
// of the top bit of its hash, into the bucket its hash picks. Tensors are
// visited in sorted order and hashed by name, so the sketch is the same on
// every node and across restarts.
func sketch(u *adapter.Update) []float64 {
	s, _ := scanUpdate(u, nil, true)
	return s.dir
}

// splitmix64 is the finaliser of SplitMix64: a cheap, well-mixed hash of
// one 64-bit word.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func norm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// normalize scales v to unit length in place; it reports false (and leaves
// v alone) for a zero vector.
func normalize(v []float64) bool {
	n := norm(v)
	if n == 0 || !finite(n) {
		return false
	}
	for i := range v {
		v[i] /= n
	}
	return true
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
